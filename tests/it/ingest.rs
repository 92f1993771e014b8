//! Ingest: formats, encodings, months, rejects, duplicates, re-ingest.

use std::time::{Duration, SystemTime};

use polars::prelude::*;
use scorecard::ingest::Reason;

use crate::{fixture, published, snapshot, strs, Workspace, RATINGS_HEADER};

/// Microseconds since the epoch of a UTC time, worked out with Python's
/// `datetime(2026, 1, 31, 15, 30, tzinfo=timezone.utc).timestamp()`.
const JAN31_1530Z: i64 = 1_769_873_400_000_000;

#[test]
fn each_input_format_lands_in_the_lake_with_the_same_types() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put(
        "ratings/a.csv",
        format!("{RATINGS_HEADER}csv1,2026-03-02T10:00:00+08:00,hr,E1,client_internal,overall,4\n"),
    );
    ws.put(
        "ratings/b.jsonl",
        r#"{"rating_id":"json1","rated_at":"2026-03-02T10:00:00+08:00","dept_id":"gsc","rater_id":"C9","rater_group":"client_external","item":"overall","score":5,"comment":null}
"#,
    );
    // Parquet with native types: a UTC timestamp and an integer score.
    let mut df = df!(
        "rating_id" => ["pq1"],
        "dept_id" => ["legal"],
        "rater_id" => ["S1"],
        "rater_group" => ["superior"],
        "item" => ["overall"],
        "score" => [2i64],
    )
    .unwrap();
    let at = Int64Chunked::from_vec("rated_at".into(), vec![1_772_416_800_000_000])
        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC));
    df.with_column(at.into_column()).unwrap();
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf).finish(&mut df).unwrap();
    ws.put("ratings/c.parquet", buf);

    ws.ingest().unwrap();
    let rows = ws.rows(
        "SELECT rating_id, dept_id, rater_group, score, scale_min, scale_max, month, source_file, source_line \
         FROM ratings ORDER BY rating_id",
    );
    // 2026-03-02 10:00 +08:00 = 02:00Z; 1772416800 s = 2026-03-02T02:00Z too.
    assert_eq!(
        rows,
        vec![
            strs(&[
                "csv1",
                "hr",
                "client_internal",
                "4.0",
                "1.0",
                "5.0",
                "2026-03",
                "ratings/a.csv",
                "2"
            ]),
            strs(&[
                "json1",
                "gsc",
                "client_external",
                "5.0",
                "1.0",
                "5.0",
                "2026-03",
                "ratings/b.jsonl",
                "1"
            ]),
            strs(&[
                "pq1",
                "legal",
                "superior",
                "2.0",
                "1.0",
                "5.0",
                "2026-03",
                "ratings/c.parquet",
                "1"
            ]),
        ]
    );
    let times = ws.sql("SELECT rated_at FROM ratings ORDER BY rating_id");
    let col = times.column("rated_at").unwrap();
    assert_eq!(
        col.dtype(),
        &DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
    );
    let us: Vec<Option<i64>> = col.datetime().unwrap().physical().iter().collect();
    assert_eq!(us, vec![Some(1_772_416_800_000_000); 3]);
}

#[test]
fn late_evening_on_the_last_day_of_a_month_stays_in_that_month() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put(
        "ratings.csv",
        format!(
            "{RATINGS_HEADER}\
             local,2026-01-31 23:30:00,hr,E1,client_internal,overall,4\n\
             utc,2026-01-31T23:30:00Z,hr,E1,client_internal,overall,4\n"
        ),
    );
    ws.ingest().unwrap();
    // 23:30 Shanghai time on 31 January is 15:30Z, still January; 23:30Z
    // is 07:30 on 1 February in Shanghai.
    let jan =
        scorecard::lake::read_parquet(&ws.out.join("lake/ratings/month=2026-01/part-0.parquet"))
            .unwrap();
    let feb =
        scorecard::lake::read_parquet(&ws.out.join("lake/ratings/month=2026-02/part-0.parquet"))
            .unwrap();
    assert_eq!(
        jan.column("rating_id").unwrap().str().unwrap().get(0),
        Some("local")
    );
    assert_eq!(jan.height(), 1);
    assert_eq!(
        jan.column("rated_at")
            .unwrap()
            .datetime()
            .unwrap()
            .physical()
            .get(0),
        Some(JAN31_1530Z)
    );
    assert_eq!(
        feb.column("rating_id").unwrap().str().unwrap().get(0),
        Some("utc")
    );
    assert_eq!(feb.height(), 1);
}

#[test]
fn gb18030_chinese_text_reads_back_identically() {
    let ws = Workspace::new();
    // Written by Python's str.encode('gb18030'), CRLF line ends, one quoted
    // field with a comma; 人力资源部 is c8cb c1a6 d7ca d4b4 b2bf in GB18030.
    std::fs::copy(
        fixture("gb18030/departments.csv"),
        ws.input.join("departments.csv"),
    )
    .unwrap();
    let m = ws.ingest().unwrap();
    assert_eq!(m.ingest.files[0].encoding, "gb18030");
    let rows = ws.rows("SELECT dept_id, name, name_en FROM departments ORDER BY dept_id");
    assert_eq!(
        rows,
        vec![
            strs(&["gsc", "政务服务中心", "Government Service Centre"]),
            strs(&["hr", "人力资源部", "Human Resources"]),
            strs(&["legal", "法务部,合同审核", "Legal Affairs"]),
        ]
    );
}

#[test]
fn utf8_with_bom_and_crlf_is_read() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put(
        "complaints.csv",
        "\u{feff}complaint_id,received_at,dept_id,severity,valid,root_cause\r\n\
         k1,2026-03-03 09:00:00,gsc,general,true,\"流程缺陷, 材料\"\r\n\
         k2,2026-03-04 09:00:00,gsc,major,否,\r\n",
    );
    let m = ws.ingest().unwrap();
    let f = m
        .ingest
        .files
        .iter()
        .find(|f| f.table == "complaints")
        .unwrap();
    assert_eq!(f.encoding, "utf-8-bom");
    let rows = ws.rows(
        "SELECT complaint_id, severity, valid, root_cause FROM complaints ORDER BY complaint_id",
    );
    assert_eq!(
        rows,
        vec![
            strs(&["k1", "general", "true", "流程缺陷, 材料"]),
            strs(&["k2", "major", "false", "∅"]),
        ]
    );
}

#[test]
fn damaged_utf8_fails_naming_the_line_instead_of_garbling() {
    let ws = Workspace::new();
    let mut bytes = "dept_id,name,dept_type\nhr,人力资源部,internal_service\n"
        .as_bytes()
        .to_vec();
    bytes.extend_from_slice(b"gsc,\xff\xfe,external_service\n");
    bytes.extend_from_slice("legal,法务部,professional_support\n".as_bytes());
    ws.put("departments.csv", bytes);
    let err = ws.ingest().unwrap_err();
    assert_eq!(scorecard::error::exit_code(&err), 3);
    let msg = format!("{err:#}");
    assert!(
        msg.contains("departments.csv: line 3: invalid UTF-8"),
        "{msg}"
    );
    assert!(!ws.out.join("lake").exists(), "nothing may be written");
}

/// Every reject reason, each on a line whose number is counted by hand.
#[test]
fn every_reject_reason_is_recorded_with_file_line_and_column() {
    let ws = Workspace::new();
    // New York, for a local time inside the spring-forward gap.
    ws.put_policy(&[(
        "timezone = \"Asia/Shanghai\"",
        "timezone = \"America/New_York\"",
    )]);
    ws.put(
        "departments.csv",
        "dept_id,name,dept_type,name_en,parent_id\n\
         hr,人力资源部,internal_service,Human Resources,\n\
         gsc,政务服务中心,external_service,Government Service Centre,\n\
         legal,法务部,professional_support,Legal Affairs,hr\n\
         alien,外星部,alien_type,Aliens,\n\
         orphan,孤儿部,internal_service,Orphans,nowhere\n",
    );
    ws.put(
        "ratings.csv",
        "rating_id,rated_at,dept_id,rater_id,rater_group,item,score,scale_min,scale_max\n\
         r1,2026-03-02 10:00:00,hr,E1,client_internal,overall,4,,\n\
         r2,2026-03-02 10:00:00,hr,,client_internal,overall,4,,\n\
         r3,yesterday,hr,E1,client_internal,overall,4,,\n\
         r4,2026-03-08 02:30:00,hr,E1,client_internal,overall,4,,\n\
         r5,2026-03-02 10:00:00,hr,E1,client_internal,overall,abc,,\n\
         r6,2026-03-02 10:00:00,hr,E1,client_internal,overall,6,,\n\
         r7,2026-03-02 10:00:00,hr,E1,boss,overall,4,,\n\
         r8,2026-03-02 10:00:00,ghost,E1,client_internal,overall,4,,\n\
         r9,2026-03-02 10:00:00,hr,E1,client_internal,overall,3,5,1\n\
         r10,2026-03-02 10:00:00,hr,E1,client_internal,overall,4,,,extra\n\
         \"r11\",\"2026-03-02 10:00:00\",\"hr\",\"E1\",\"client_internal\",\"multi\n\
         line item\",4,,\n",
    );
    ws.put(
        "complaints.csv",
        "complaint_id,received_at,dept_id,severity,valid\n\
         k1,2026-03-03 09:00:00,gsc,general,maybe\n\
         k2,2026-03-03 09:00:00,gsc,general,true\n",
    );
    ws.put(
        "measurements.csv",
        "dept_id,metric,period_start,period_end,value,numerator,denominator\n\
         hr,training_hours,2026-02-30,,12,,\n\
         hr,training_hours,2026-03-01,,,,\n\
         hr,training_hours,2026-03-31,2026-03-01,12,,\n\
         hr,process_compliance,2026-03-01,,,18,20\n",
    );
    ws.put(
        "process_events.jsonl",
        "{\"case_id\":\"c1\",\"event\":\"received\",\"at\":\"2026-03-04T09:00:00-05:00\",\"dept_id\":\"gsc\"}\n\
         {\"case_id\":\"c1\",\"event\":\"resolved\",\"at\":\n\
         {\"case_id\":\"c1\",\"event\":\"resolved\",\"at\":\"2026-03-04T10:00:00-05:00\",\"dept_id\":[\"gsc\"]}\n",
    );
    ws.put(
        "followups.csv",
        "followup_id,subject_kind,subject_id,kind,at,outcome\n\
         f1,rating,r1,call_back,2026-03-03 10:00:00,satisfied\n\
         f2,rating,r1,rectified,2026-03-03 11:00:00,satisfied\n",
    );
    ws.put(
        "improvement_plans.csv",
        "plan_id,dept_id,opened_on,reason,owner,due_on\n\
         p1,gsc,2026-03-01,audit,Wang,2026-02-27\n",
    );
    ws.put(
        "plan_events.csv",
        "event_id,plan_id,kind,at,new_due_on\n\
         e1,p1,extended,2026-03-02 10:00:00,\n\
         e2,p1,done,2026-03-02 10:00:00,2026-04-01\n",
    );
    // s1 moves from hr to gsc on 16 March (two rows, kept); its third row
    // overlaps the second.
    ws.put(
        "staff.csv",
        "staff_id,name,name_en,dept_id,role,valid_from,valid_to\n\
         s1,王伟,Wang Wei,hr,staff,,2026-03-15\n\
         s1,王伟,Wang Wei,gsc,staff,2026-03-16,\n\
         s1,王伟,Wang Wei,legal,staff,2026-03-10,\n\
         s2,李娜,,,manager,,\n\
         s3,张敏,,ghost,staff,,\n\
         s4,刘洋,,hr,staff,2026-04-01,2026-03-01\n",
    );
    let m = ws.ingest().unwrap();
    assert_eq!(m.rejects_total, 25);

    let rows = ws.rows("SELECT \"table\", file, line, \"column\", reason FROM rejects");
    let expected = [
        ["complaints", "complaints.csv", "2", "valid", "bad_bool"],
        [
            "departments",
            "departments.csv",
            "5",
            "dept_type",
            "unknown_dept_type",
        ],
        [
            "departments",
            "departments.csv",
            "6",
            "parent_id",
            "unknown_department",
        ],
        [
            "followups",
            "followups.csv",
            "3",
            "outcome",
            "outcome_without_call_back",
        ],
        [
            "improvement_plans",
            "improvement_plans.csv",
            "2",
            "due_on",
            "due_before_opened",
        ],
        [
            "measurements",
            "measurements.csv",
            "2",
            "period_start",
            "bad_date",
        ],
        [
            "measurements",
            "measurements.csv",
            "3",
            "value",
            "incomplete_measurement",
        ],
        [
            "measurements",
            "measurements.csv",
            "4",
            "period_end",
            "bad_period",
        ],
        [
            "plan_events",
            "plan_events.csv",
            "2",
            "new_due_on",
            "extension_without_date",
        ],
        [
            "plan_events",
            "plan_events.csv",
            "3",
            "new_due_on",
            "date_without_extension",
        ],
        [
            "process_events",
            "process_events.jsonl",
            "2",
            "∅",
            "bad_json",
        ],
        [
            "process_events",
            "process_events.jsonl",
            "3",
            "dept_id",
            "not_scalar",
        ],
        ["ratings", "ratings.csv", "3", "rater_id", "missing_value"],
        ["ratings", "ratings.csv", "4", "rated_at", "bad_timestamp"],
        [
            "ratings",
            "ratings.csv",
            "5",
            "rated_at",
            "nonexistent_local_time",
        ],
        ["ratings", "ratings.csv", "6", "score", "bad_number"],
        ["ratings", "ratings.csv", "7", "score", "out_of_range"],
        ["ratings", "ratings.csv", "8", "rater_group", "bad_value"],
        [
            "ratings",
            "ratings.csv",
            "9",
            "dept_id",
            "unknown_department",
        ],
        ["ratings", "ratings.csv", "10", "scale_max", "bad_scale"],
        ["ratings", "ratings.csv", "11", "∅", "ragged_row"],
        [
            "staff",
            "staff.csv",
            "4",
            "valid_from",
            "overlapping_validity",
        ],
        [
            "staff",
            "staff.csv",
            "5",
            "dept_id",
            "manager_without_department",
        ],
        ["staff", "staff.csv", "6", "dept_id", "unknown_department"],
        ["staff", "staff.csv", "7", "valid_to", "bad_period"],
    ];
    assert_eq!(rows, expected.iter().map(|r| strs(r)).collect::<Vec<_>>());

    // The fixture covers every reason the code knows.
    let covered: std::collections::BTreeSet<&str> = expected.iter().map(|r| r[4]).collect();
    let all: std::collections::BTreeSet<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(covered, all);

    // The raw text is kept exactly, and the message says what was expected.
    let ragged = ws.rows("SELECT raw, message FROM rejects WHERE reason = 'ragged_row'");
    assert_eq!(
        ragged[0][0],
        "r10,2026-03-02 10:00:00,hr,E1,client_internal,overall,4,,,extra"
    );
    assert_eq!(ragged[0][1], "expected 9 fields as in the header, found 10");
    let orphan = ws.rows("SELECT raw FROM rejects WHERE \"column\" = 'parent_id'");
    assert_eq!(
        orphan[0][0],
        "orphan,孤儿部,internal_service,Orphans,nowhere"
    );

    let overlap = ws.rows("SELECT message FROM rejects WHERE reason = 'overlapping_validity'");
    assert_eq!(
        overlap[0][0],
        "staff `s1` from 2026-03-10 to open end overlaps its row from always to 2026-03-15"
    );
    let staff = ws.rows(
        "SELECT staff_id, dept_id, COALESCE(CAST(valid_from AS VARCHAR), '-') FROM staff ORDER BY staff_id, dept_id DESC",
    );
    assert_eq!(
        staff,
        vec![strs(&["s1", "hr", "-"]), strs(&["s1", "gsc", "2026-03-16"])]
    );

    // Valid records are stored: the multi-line quoted field starts on line 12.
    let ratings = ws.rows("SELECT rating_id, item, source_line FROM ratings ORDER BY rating_id");
    assert_eq!(
        ratings,
        vec![
            strs(&["r1", "overall", "2"]),
            strs(&["r11", "multi\nline item", "12"])
        ]
    );
    // Measurement period_end defaults to the end of the month.
    let meas = ws.rows("SELECT metric, CAST(period_end AS VARCHAR) FROM measurements");
    assert_eq!(meas, vec![strs(&["process_compliance", "2026-03-31"])]);
}

#[test]
fn missing_required_column_fails_naming_file_column_and_columns_present() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.ingest().unwrap();
    let before = published(&ws.out);
    ws.put(
        "ratings/2026-03-01.csv",
        "rating_id,rated_at,dept_id,rater_id,rater_group,item\nr1,2026-03-02 10:00:00,hr,E1,peer,overall\n",
    );
    let err = ws.ingest().unwrap_err();
    assert_eq!(scorecard::error::exit_code(&err), 3);
    let msg = format!("{err:#}");
    assert!(
        msg.contains(
            "ratings/2026-03-01.csv: missing required column `score` for table `ratings`; \
             the file has columns: rating_id, rated_at, dept_id, rater_id, rater_group, item"
        ),
        "{msg}"
    );
    assert_eq!(
        published(&ws.out),
        before,
        "a failed run must not touch the outputs"
    );
}

#[test]
fn unknown_department_is_rejected_and_the_rest_is_kept() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put(
        "incidents.csv",
        "incident_id,occurred_at,dept_id,kind,confirmed\n\
         i1,2026-03-03 09:00:00,gsc,major_service_incident,true\n\
         i2,2026-03-03 09:00:00,nowhere,major_service_incident,true\n",
    );
    ws.ingest().unwrap();
    assert_eq!(
        ws.rows("SELECT incident_id FROM incidents"),
        vec![strs(&["i1"])]
    );
    assert_eq!(
        ws.rows("SELECT line, \"column\", reason, message FROM rejects"),
        vec![strs(&[
            "3",
            "dept_id",
            "unknown_department",
            "department `nowhere` is not in the departments table"
        ])]
    );
}

#[test]
fn duplicates_across_files_keep_the_later_files_version() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put(
        "ratings/2026-03-01.csv",
        format!(
            "{RATINGS_HEADER}r1,2026-03-01 10:00:00,hr,E1,peer,overall,3\n\
             r1,2026-03-01 10:00:00,hr,E1,peer,attitude,2\n"
        ),
    );
    ws.put(
        "ratings/2026-03-02.csv",
        format!(
            "{RATINGS_HEADER}r1,2026-03-01 10:00:00,hr,E1,peer,overall,5\n\
             r2,2026-03-02 10:00:00,gsc,C1,client_external,overall,4\n"
        ),
    );
    // Process events without event_id: identical rows are one event.
    ws.put(
        "process_events/a.jsonl",
        "{\"case_id\":\"c1\",\"event\":\"received\",\"at\":\"2026-03-04 09:00:00\",\"dept_id\":\"gsc\"}\n",
    );
    ws.put(
        "process_events/b.jsonl",
        "{\"case_id\":\"c1\",\"event\":\"received\",\"at\":\"2026-03-04 09:00:00\",\"dept_id\":\"gsc\"}\n\
         {\"case_id\":\"c1\",\"event\":\"resolved\",\"at\":\"2026-03-04 11:00:00\",\"dept_id\":\"gsc\"}\n",
    );
    ws.ingest().unwrap();
    assert_eq!(
        ws.rows("SELECT rating_id, item, score, source_file FROM ratings ORDER BY rating_id, item"),
        vec![
            strs(&["r1", "attitude", "2.0", "ratings/2026-03-01.csv"]),
            strs(&["r1", "overall", "5.0", "ratings/2026-03-02.csv"]),
            strs(&["r2", "overall", "4.0", "ratings/2026-03-02.csv"]),
        ]
    );
    assert_eq!(
        ws.rows("SELECT event FROM process_events ORDER BY at"),
        vec![strs(&["received"]), strs(&["resolved"])]
    );
}

/// The one ratings file of the file-time tests.
const FILE: &str = "ratings/2026-03-01.csv";

/// Sets the modification time of the ratings file, as an export copied
/// with its time kept would have.
fn set_modified(ws: &Workspace, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(ws.input.join(FILE))
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// Writes the ratings file with rating r1 scored `score` (every score gives
/// the same size) unless `score` is `None`, sets its modification time to
/// `at` unless that is `None`, and ingests: the file's status and the
/// lake's scores.
fn ingest_version(
    ws: &Workspace,
    score: Option<u8>,
    at: Option<SystemTime>,
) -> (String, Vec<Vec<String>>) {
    if let Some(score) = score {
        ws.put(
            FILE,
            format!("{RATINGS_HEADER}r1,2026-03-01 10:00:00,hr,E1,peer,overall,{score}\n"),
        );
    }
    if let Some(at) = at {
        set_modified(ws, at);
    }
    let m = ws.ingest().unwrap();
    let f = m
        .ingest
        .files
        .iter()
        .find(|f| f.table == "ratings")
        .unwrap();
    (
        f.status.clone(),
        ws.rows("SELECT rating_id, score FROM ratings"),
    )
}

/// A status and rating r1's score in the lake, as `ingest_version` gives.
fn r1(status: &str, score: &str) -> (String, Vec<Vec<String>>) {
    (status.to_string(), vec![strs(&["r1", score])])
}

fn ingest_log(ws: &Workspace) -> DataFrame {
    scorecard::lake::read_parquet(&ws.out.join("lake/_ingest_log.parquet")).unwrap()
}

/// The modification time the ingest log holds for the ratings file, in
/// microseconds since the epoch.
fn logged_time(ws: &Workspace) -> Option<i64> {
    let log = ingest_log(ws);
    let files = log.column("file").unwrap().str().unwrap().clone();
    let at = files.iter().position(|f| f == Some(FILE)).unwrap();
    log.column("modified")
        .unwrap()
        .datetime()
        .unwrap()
        .physical()
        .get(at)
}

fn micros(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

#[test]
fn a_file_with_the_logged_size_and_an_older_time_is_not_read_again() {
    let ws = Workspace::new();
    ws.put_departments();
    // An export written an hour before the ingest.
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    assert_eq!(
        ingest_version(&ws, Some(3), Some(hour_ago)),
        r1("new", "3.0")
    );
    assert_eq!(logged_time(&ws), Some(micros(hour_ago)));

    // Same size, same time: the file is known without being read, so
    // content changed behind a kept time goes unseen (as with git or rsync).
    assert_eq!(
        ingest_version(&ws, Some(4), Some(hour_ago)),
        r1("unchanged", "3.0")
    );

    // A new time: read again.
    let later = hour_ago + Duration::from_secs(1);
    assert_eq!(ingest_version(&ws, None, Some(later)), r1("changed", "4.0"));
    assert_eq!(logged_time(&ws), Some(micros(later)));

    // Touched without a change: hashed, found unchanged, and logged with
    // its new time.
    let touched = later + Duration::from_secs(1);
    assert_eq!(
        ingest_version(&ws, None, Some(touched)),
        r1("unchanged", "4.0")
    );
    assert_eq!(logged_time(&ws), Some(micros(touched)));

    // A log written before it held modification times vouches for nothing:
    // the file is hashed, and found changed.
    let mut old_log = ingest_log(&ws).drop("modified").unwrap();
    ParquetWriter::new(std::fs::File::create(ws.out.join("lake/_ingest_log.parquet")).unwrap())
        .finish(&mut old_log)
        .unwrap();
    assert_eq!(
        ingest_version(&ws, Some(5), Some(touched)),
        r1("changed", "5.0")
    );
    assert_eq!(logged_time(&ws), Some(micros(touched)));
}

#[test]
fn a_policy_that_does_not_trust_file_times_has_every_file_hashed() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put_policy(&[("trust_file_times = true", "trust_file_times = false")]);
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    assert_eq!(
        ingest_version(&ws, Some(3), Some(hour_ago)),
        r1("new", "3.0")
    );
    // Rewritten in place with its size and time kept: seen all the same.
    assert_eq!(
        ingest_version(&ws, Some(4), Some(hour_ago)),
        r1("changed", "4.0")
    );
}

#[test]
fn a_file_written_just_before_an_ingest_is_hashed_again() {
    let ws = Workspace::new();
    ws.put_departments();
    // Written moments before the ingest began: the time does not vouch for
    // what was read, as the file may be written again within the same
    // timestamp step.
    assert_eq!(ingest_version(&ws, Some(3), None), r1("new", "3.0"));
    let written = std::fs::metadata(ws.input.join(FILE))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        ingest_version(&ws, Some(4), Some(written)),
        r1("changed", "4.0")
    );
}

#[test]
fn re_ingesting_adds_nothing_and_a_changed_file_wins() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put(
        "ratings/2026-03-01.csv",
        format!("{RATINGS_HEADER}r1,2026-03-01 10:00:00,hr,E1,peer,overall,3\nbad,2026-03-01,hr,E1,peer,overall,9\n"),
    );
    let first = ws.ingest().unwrap();
    assert_eq!(first.ingest.tables["ratings"].rows_after, 1);
    assert_eq!(first.rejects_total, 1);
    let lake_before = snapshot(&ws.out.join("lake"));

    let second = ws.ingest().unwrap();
    assert!(second.ingest.files.iter().all(|f| f.status == "unchanged"));
    assert_eq!(second.ingest.tables["ratings"].rows_after, 1);
    assert_eq!(second.rejects_total, 1, "rejects are not duplicated");
    assert_eq!(
        snapshot(&ws.out.join("lake")),
        lake_before,
        "the lake is byte-identical"
    );

    // The export is corrected: the new version replaces the old.
    ws.put(
        "ratings/2026-03-01.csv",
        format!("{RATINGS_HEADER}r1,2026-03-01 10:00:00,hr,E1,peer,overall,4\n"),
    );
    let third = ws.ingest().unwrap();
    let f = third
        .ingest
        .files
        .iter()
        .find(|f| f.table == "ratings")
        .unwrap();
    assert_eq!(f.status, "changed");
    assert_eq!(
        ws.rows("SELECT rating_id, score FROM ratings"),
        vec![strs(&["r1", "4.0"])]
    );
    assert_eq!(
        third.rejects_total, 0,
        "the old file's rejects are replaced"
    );
}

/// A lake written before `ratings.real_name` existed: its month files lack
/// the column. A new export for the same month merges into them, and a run
/// reads the old rows with `real_name` empty.
#[test]
fn a_lake_older_than_a_column_takes_new_rows_and_reads_it_as_empty() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put(
        "ratings/2026-03-02.csv",
        "rating_id,rated_at,dept_id,rater_id,rater_group,item,score\n\
         r1,2026-03-02 10:00:00,gsc,c1,client_external,overall,1\n",
    );
    ws.ingest().unwrap();
    let part = ws.out.join("lake/ratings/month=2026-03/part-0.parquet");
    let mut old = ParquetReader::new(std::fs::File::open(&part).unwrap())
        .finish()
        .unwrap()
        .drop("real_name")
        .unwrap();
    ParquetWriter::new(std::fs::File::create(&part).unwrap())
        .finish(&mut old)
        .unwrap();

    ws.put(
        "ratings/2026-03-03.csv",
        "rating_id,rated_at,dept_id,rater_id,rater_group,item,score,real_name\n\
         r2,2026-03-03 10:00:00,gsc,c2,client_external,overall,1,true\n",
    );
    ws.run_cli(None, "2026-03-31");
    assert_eq!(
        ws.rows("SELECT rating_id, real_name FROM ratings ORDER BY rating_id"),
        vec![strs(&["r1", "∅"]), strs(&["r2", "true"])]
    );
    // Both are bad reviews; only r2's rater gave their name.
    assert_eq!(
        ws.rows("SELECT subject_id, call_back_required FROM followup_status ORDER BY subject_id"),
        vec![strs(&["r1", "false"]), strs(&["r2", "true"])]
    );
}

/// A staff row overlapping one already in the lake is rejected; a row with
/// the key (staff id and valid_from) of one in the lake replaces it, so a
/// re-export that closes a stretch and opens the next is no overlap.
#[test]
fn staff_rows_are_checked_against_the_lake() {
    let ws = Workspace::new();
    ws.put(
        "departments.csv",
        "dept_id,name,dept_type\nhr,人力资源部,internal_service\ngsc,政务服务中心,external_service\n",
    );
    ws.put(
        "staff.csv",
        "staff_id,name,dept_id,role,valid_from,valid_to\ns1,王伟,hr,staff,,\n",
    );
    assert_eq!(ws.ingest().unwrap().rejects_total, 0);
    // The move to gsc: hr's row closed (same key), gsc's opened.
    ws.put(
        "staff/2026-03.csv",
        "staff_id,name,dept_id,role,valid_from,valid_to\n\
         s1,王伟,hr,staff,,2026-03-15\n\
         s1,王伟,gsc,staff,2026-03-16,\n",
    );
    assert_eq!(ws.ingest().unwrap().rejects_total, 0);
    // A later file that puts s1 back in hr from 20 March overlaps gsc's
    // open stretch in the lake.
    ws.put(
        "staff/2026-04.csv",
        "staff_id,name,dept_id,role,valid_from,valid_to\ns1,王伟,hr,staff,2026-03-20,\n",
    );
    assert_eq!(ws.ingest().unwrap().rejects_total, 1);
    let rejects = ws.rows("SELECT file, line, reason, message FROM rejects");
    assert_eq!(
        rejects,
        vec![strs(&[
            "staff/2026-04.csv",
            "2",
            "overlapping_validity",
            "staff `s1` from 2026-03-20 to open end overlaps its row from 2026-03-16 to open end"
        ])]
    );
    let staff = ws.rows(
        "SELECT dept_id, COALESCE(CAST(valid_to AS VARCHAR), '-') FROM staff ORDER BY dept_id DESC",
    );
    assert_eq!(
        staff,
        vec![strs(&["hr", "2026-03-15"]), strs(&["gsc", "-"])]
    );
}
