//! Cases, satisfaction and indicator values on hand-built fixtures; every
//! expected figure is worked out in the comments.

use scorecard::progress::Progress;
use scorecard::run::{self, RunOptions};

use crate::{strs, Workspace};

/// `scorecard run --as-of` through the library.
fn run_as_of(ws: &Workspace, as_of: &str) {
    run::run(
        &RunOptions {
            input: ws.input.clone(),
            out: ws.out.clone(),
            policy: None,
            as_of: Some(as_of.parse().unwrap()),
            ingest_only: false,
        },
        &Progress::silent(),
    )
    .unwrap();
}

/// Eight cases of `gsc` received in March 2026 (Asia/Shanghai), as-of
/// Tuesday 10 March 2026.
const EVENTS: &str = r#"{"case_id":"c1","event":"received","at":"2026-03-02 09:00:00","dept_id":"gsc","due_at":"2026-03-04 09:00:00","response_due_at":"2026-03-02 10:00:00","instant":false}
{"case_id":"c1","event":"visit","at":"2026-03-02 09:00:00","dept_id":"gsc"}
{"case_id":"c1","event":"responded","at":"2026-03-02 09:30:00","dept_id":"gsc"}
{"case_id":"c1","event":"resolved","at":"2026-03-03 09:00:00","dept_id":"gsc"}
{"case_id":"c1","event":"notified","at":"2026-03-03 10:00:00","dept_id":"gsc"}
{"case_id":"c2","event":"received","at":"2026-03-02 09:00:00","dept_id":"gsc","due_at":"2026-03-09 09:00:00","instant":true}
{"case_id":"c2","event":"visit","at":"2026-03-02 09:00:00","dept_id":"gsc"}
{"case_id":"c2","event":"resolved","at":"2026-03-03 09:00:00","dept_id":"gsc"}
{"case_id":"c2","event":"notified","at":"2026-03-03 09:30:00","dept_id":"gsc"}
{"case_id":"c2","event":"reopened","at":"2026-03-04 09:00:00","dept_id":"gsc"}
{"case_id":"c2","event":"visit","at":"2026-03-04 10:00:00","dept_id":"gsc"}
{"case_id":"c2","event":"resolved","at":"2026-03-05 09:00:00","dept_id":"gsc"}
{"case_id":"c3","event":"received","at":"2026-03-02 09:00:00","dept_id":"gsc","due_at":"2026-03-03 09:00:00","instant":false}
{"case_id":"c3","event":"transferred","at":"2026-03-02 13:00:00","dept_id":"legal"}
{"case_id":"c3","event":"suspended","at":"2026-03-02 15:00:00","dept_id":"legal"}
{"case_id":"c3","event":"resumed","at":"2026-03-02 17:00:00","dept_id":"legal"}
{"case_id":"c3","event":"resolved","at":"2026-03-03 13:00:00","dept_id":"legal"}
{"case_id":"c3","event":"notified","at":"2026-03-03 14:00:00","dept_id":"legal"}
{"case_id":"c4","event":"received","at":"2026-03-02 09:00:00","dept_id":"gsc","due_at":"2026-03-05 09:00:00"}
{"case_id":"c5","event":"received","at":"2026-03-09 09:00:00","dept_id":"gsc","due_at":"2026-03-20 09:00:00"}
{"case_id":"c6","event":"received","at":"2026-03-03 09:00:00","dept_id":"gsc","due_at":"2026-03-04 09:00:00"}
{"case_id":"c6","event":"cancelled","at":"2026-03-03 11:00:00","dept_id":"gsc"}
{"case_id":"c7","event":"received","at":"2026-03-06 10:00:00","dept_id":"gsc","service_type":"consultation"}
{"case_id":"c7","event":"responded","at":"2026-03-06 11:00:00","dept_id":"gsc"}
{"case_id":"c7","event":"resolved","at":"2026-03-09 16:00:00","dept_id":"gsc"}
{"case_id":"c8","event":"received","at":"2026-03-09 09:00:00","dept_id":"gsc","due_at":"2026-03-11 09:00:00"}
{"case_id":"c8","event":"resolved","at":"2026-03-12 09:00:00","dept_id":"gsc"}
"#;

#[test]
fn case_statuses_reopening_transfers_and_deadlines() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put("process_events.jsonl", EVENTS);
    run_as_of(&ws, "2026-03-10");
    let rows = ws.rows(
        "SELECT case_id, dept_id, status, on_time, reopen_count, visit_count, transfer_count, \
         resolution_hours, response_hours, response_on_time, notified FROM cases ORDER BY case_id",
    );
    let expected = [
        // Resolved a day after receipt, before its deadline; responded in 30 min.
        [
            "c1", "gsc", "resolved", "true", "0", "1", "0", "24.0", "0.5", "true", "true",
        ],
        // Reopened: the resolution that counts is the last one, 3 days in;
        // its notification came before the reopening, so it is not notified.
        // No response_due_at: the policy's default 24 h response limit
        // applies, and it never responded: late.
        [
            "c2", "gsc", "resolved", "true", "1", "2", "0", "72.0", "∅", "false", "false",
        ],
        // Transferred to legal at 13:00, suspended 2 h, resolved after its
        // 09:00 deadline: 28 h elapsed - 2 h suspended = 26 h, late.
        [
            "c3", "gsc", "resolved", "false", "0", "0", "1", "26.0", "∅", "false", "true",
        ],
        // Unresolved, deadline 5 March passed by as-of: overdue, late.
        [
            "c4", "gsc", "overdue", "false", "0", "0", "0", "∅", "∅", "false", "false",
        ],
        // Unresolved, due 20 March: pending, not decided; its response was
        // due 24 h after receipt, 10 March 09:00, before the end of as-of.
        [
            "c5", "gsc", "pending", "∅", "0", "0", "0", "∅", "∅", "false", "false",
        ],
        [
            "c6",
            "gsc",
            "cancelled",
            "∅",
            "0",
            "0",
            "0",
            "∅",
            "∅",
            "∅",
            "false",
        ],
        // No due_at: `consultation` allows 1 working day (policy), so Friday
        // 6 March 10:00 is due at the end of Monday 9 March; resolved Monday
        // 16:00 after 78 h, on time. Response limit 2 h: 11:00 is on time.
        [
            "c7", "gsc", "resolved", "true", "0", "0", "0", "78.0", "1.0", "true", "false",
        ],
        // Resolved on 12 March, after as-of: still pending at as-of.
        [
            "c8", "gsc", "pending", "∅", "0", "0", "0", "∅", "∅", "false", "false",
        ],
    ];
    assert_eq!(rows, expected.iter().map(|r| strs(r)).collect::<Vec<_>>());

    // Where c3's time went: gsc 09:00-13:00 = 4 h; legal 13:00 to 13:00 next
    // day = 24 h less 2 h suspended = 22 h.
    assert_eq!(
        ws.rows("SELECT dept_id, hours FROM case_time WHERE case_id = 'c3'"),
        vec![strs(&["gsc", "4.0"]), strs(&["legal", "22.0"])]
    );
    // The intake department's page for March lists the same: c3 is the only
    // transferred case, so one case per holder (in holder id order, with
    // the default locale's names).
    let page = std::fs::read_to_string(ws.out.join("site/departments/gsc/2026-03.html")).unwrap();
    assert!(
        page.contains(
            "<tbody><tr><td>政务服务中心</td><td class=\"num\">1</td><td class=\"num\">4.0</td></tr>\
             <tr><td>法务部</td><td class=\"num\">1</td><td class=\"num\">22.0</td></tr></tbody>"
        ),
        "{page}"
    );
}

/// Cases open for weeks at two as-ofs: the second run on the first's
/// output, where only the month between the two as-ofs is derived again
/// (the nightly path), and on its own (every case derived).
#[test]
fn an_open_case_moves_with_as_of_only_while_its_time_runs() {
    // February: o1 with gsc 09:00-13:00 on 2 February, then legal,
    // suspended 3 February 09:00-21:00; o2 suspended two hours after
    // receipt, never resumed, due 4 February; o3 with a response due 6
    // March 09:00, none given. January and March: one case each, resolved.
    // Without a response_due_at the policy's default 24 h applies, and no
    // case but o3 responded in time: their responses are late.
    let events = "case_id,event,at,dept_id,service_type,due_at,response_due_at\n\
        j1,received,2026-01-05 09:00:00,gsc,,2026-01-06 09:00:00,\n\
        j1,resolved,2026-01-05 10:00:00,gsc,,,\n\
        o1,received,2026-02-02 09:00:00,gsc,,2026-03-20 09:00:00,\n\
        o1,transferred,2026-02-02 13:00:00,legal,,,\n\
        o1,suspended,2026-02-03 09:00:00,legal,,,\n\
        o1,resumed,2026-02-03 21:00:00,legal,,,\n\
        o2,received,2026-02-02 09:00:00,gsc,,2026-02-04 09:00:00,\n\
        o2,suspended,2026-02-02 11:00:00,gsc,,,\n\
        o3,received,2026-02-04 09:00:00,gsc,,2026-03-30 09:00:00,2026-03-06 09:00:00\n\
        m1,received,2026-03-02 09:00:00,gsc,,2026-03-03 09:00:00,\n\
        m1,resolved,2026-03-02 12:00:00,gsc,,,\n";
    let cases = "SELECT case_id, status, on_time, response_on_time FROM cases ORDER BY case_id";
    let held =
        "SELECT case_id, dept_id, round(hours, 6) AS h FROM case_time ORDER BY case_id, dept_id";
    let closed = [
        strs(&["j1", "resolved", "true", "false"]),
        strs(&["m1", "resolved", "true", "false"]),
    ];
    let with_closed = |open: [Vec<String>; 3]| {
        let mut rows = closed.to_vec();
        rows.extend(open);
        rows
    };
    let ws = Workspace::new();
    ws.put_departments();
    ws.put("process_events.csv", events);

    // As of 5 March (its end: 6 March 00:00 less a microsecond, local).
    // o1: legal from 2 February 13:00 to 2 March 13:00 is 672 h (28 days),
    // to 6 March 00:00 83 h more, less 12 h suspended: 743 h. o2: 2 h, its
    // time stopped; overdue since 4 February. o3: 672 h from 4 February
    // 09:00 to 4 March 09:00, 39 h more; its response is not late yet.
    ws.run_cli(None, "2026-03-05");
    assert_eq!(
        ws.rows(cases),
        with_closed([
            strs(&["o1", "pending", "∅", "false"]),
            strs(&["o2", "overdue", "false", "false"]),
            strs(&["o3", "pending", "∅", "∅"]),
        ])
    );
    let held_rows = |o1: &str, o3: &str| {
        vec![
            strs(&["j1", "gsc", "1.0"]),
            strs(&["m1", "gsc", "3.0"]),
            strs(&["o1", "gsc", "4.0"]),
            strs(&["o1", "legal", o1]),
            strs(&["o2", "gsc", "2.0"]),
            strs(&["o3", "gsc", o3]),
        ]
    };
    assert_eq!(ws.rows(held), held_rows("743.0", "711.0"));

    // As of 8 March, three days on: o1's and o3's holders 72 h more, o2
    // still 2 h; o3's response is late now.
    let at_8_march = |ws: &Workspace| {
        assert_eq!(
            ws.rows(cases),
            with_closed([
                strs(&["o1", "pending", "∅", "false"]),
                strs(&["o2", "overdue", "false", "false"]),
                strs(&["o3", "pending", "∅", "false"]),
            ])
        );
        assert_eq!(ws.rows(held), held_rows("815.0", "783.0"));
    };
    ws.run_cli(None, "2026-03-08");
    at_8_march(&ws);
    // Only March may hold events between the two as-ofs: m1 alone is
    // derived again, the open cases of February are put at the new as-of.
    let derived = &crate::manifest(&ws.out)["compute"]["cases_derived"];
    assert_eq!(derived.as_u64(), Some(1));
    let full = Workspace::new();
    full.run_cli(Some(&ws.input), "2026-03-08");
    at_8_march(&full);
    for mart in ["cases", "case_time"] {
        let file = format!("marts/{mart}.parquet");
        assert_eq!(
            std::fs::read(ws.out.join(&file)).unwrap(),
            std::fs::read(full.out.join(&file)).unwrap(),
            "{file}"
        );
    }
}

/// Bad reviews and complaints around the 2026 National Day holiday (1-7
/// October off, Saturday 10 October a make-up working day), as of 20
/// October, under the default policy: 5 working days to call back and to
/// rectify a bad review, call-backs owed to real-name raters only, 10
/// working days for a complaint without `due_at`. Times are local
/// (Asia/Shanghai, UTC+8); the marts hold UTC.
#[test]
fn follow_ups_of_bad_reviews_and_complaints_worked_by_hand() {
    let ws = Workspace::new();
    ws.put_departments();
    // r1-r4 are bad reviews (1 on 1-5 is 0 on 0-100); r5 is not.
    ws.put(
        "ratings.csv",
        "rating_id,rated_at,dept_id,rater_id,rater_group,item,score,real_name\n\
         r1,2026-09-29 10:00:00,gsc,c1,client_external,overall,1,true\n\
         r2,2026-09-29 11:00:00,gsc,c2,client_external,overall,2,false\n\
         r3,2026-10-09 09:00:00,gsc,c3,client_external,overall,1,true\n\
         r4,2026-10-19 09:00:00,gsc,c4,client_external,overall,1,true\n\
         r5,2026-10-19 10:00:00,gsc,c5,client_external,overall,5,true\n",
    );
    ws.put(
        "complaints.csv",
        "complaint_id,received_at,dept_id,severity,valid,due_at,rectified_at\n\
         k1,2026-09-29 09:00:00,gsc,general,true,2026-10-09 09:00:00,\n\
         k2,2026-10-12 09:00:00,gsc,general,true,,2026-10-14 09:00:00\n\
         k3,2026-09-30 09:00:00,gsc,general,true,2026-10-09 09:00:00,\n",
    );
    ws.put(
        "followups.csv",
        "followup_id,subject_kind,subject_id,kind,at,outcome\n\
         f1,rating,r1,call_back,2026-10-10 15:00:00,partly\n\
         f2,rating,r1,rectified,2026-10-12 18:00:00,\n\
         f3,rating,r1,call_back,2026-10-13 10:00:00,satisfied\n\
         f4,rating,r2,rectified,2026-10-13 09:00:00,\n\
         f5,complaint,k1,rectified,2026-10-08 10:00:00,\n\
         f6,complaint,k1,reopened,2026-10-09 08:00:00,\n\
         f7,complaint,k1,explained,2026-10-12 10:00:00,\n\
         f8,rating,r4,call_back,2026-10-18 10:00:00,satisfied\n\
         f9,rating,r5,call_back,2026-10-19 12:00:00,satisfied\n\
         f10,rating,r1,rectified,2026-10-21 09:00:00,\n\
         f11,complaint,k3,rectified,2026-10-08 10:00:00,\n",
    );
    run_as_of(&ws, "2026-10-20");

    // Deadlines: r1 and r2 (29 September) count 30 September, 8, 9, 10
    // (make-up) and 12 October: due at the end of Monday 12 October, that
    // is 15:59:59.999999 UTC. r3 (Friday 9 October) counts 10, 12, 13, 14,
    // 15 October. r4 (19 October) counts 20-23 and 26 October. k2 (12
    // October, 10 working days) counts 13-16, 19-23 and 26 October.
    // r1: first call-back 10 October, on time, its outcome that of the
    // last call-back (satisfied); rectified on time (f10 is after as-of).
    // r2: an anonymous rater, owed no call-back; rectified a day late.
    // r3: nothing by as-of, both overdue. r4: not yet due; f8 is dated
    // before the rating and left out. k1: rectified, reopened, then
    // explained on 12 October, after its 9 October 09:00 deadline: late.
    // k2: its own rectified_at, on time. k3: rectified on time by a
    // follow-up only. f9 is about a rating that is not a bad review: left
    // out.
    let rows = ws.rows(
        "SELECT subject_kind, subject_id, real_name, call_back_required, call_back_due_at, \
         called_back_at, call_back_outcome, call_back_status, rectify_due_at, rectified_at, \
         rectified_how, rectify_status, reopen_count, followups \
         FROM followup_status ORDER BY subject_kind, subject_id",
    );
    // Columns as selected; a deadline ends at 24:00 local, 15:59:59.999999
    // UTC.
    let expected = [
        "complaint | k1 | ∅ | false | ∅ | ∅ | ∅ | not_required | 2026-10-09 01:00:00 UTC | 2026-10-12 02:00:00 UTC | explained | late | 1 | 3",
        "complaint | k2 | ∅ | false | ∅ | ∅ | ∅ | not_required | 2026-10-26 15:59:59.999999 UTC | 2026-10-14 01:00:00 UTC | rectified | on_time | 0 | 0",
        "complaint | k3 | ∅ | false | ∅ | ∅ | ∅ | not_required | 2026-10-09 01:00:00 UTC | 2026-10-08 02:00:00 UTC | rectified | on_time | 0 | 1",
        "rating | r1 | true | true | 2026-10-12 15:59:59.999999 UTC | 2026-10-10 07:00:00 UTC | satisfied | on_time | 2026-10-12 15:59:59.999999 UTC | 2026-10-12 10:00:00 UTC | rectified | on_time | 0 | 3",
        "rating | r2 | false | false | ∅ | ∅ | ∅ | not_required | 2026-10-12 15:59:59.999999 UTC | 2026-10-13 01:00:00 UTC | rectified | late | 0 | 1",
        "rating | r3 | true | true | 2026-10-15 15:59:59.999999 UTC | ∅ | ∅ | overdue | 2026-10-15 15:59:59.999999 UTC | ∅ | ∅ | overdue | 0 | 0",
        "rating | r4 | true | true | 2026-10-26 15:59:59.999999 UTC | ∅ | ∅ | open | 2026-10-26 15:59:59.999999 UTC | ∅ | ∅ | open | 0 | 0",
    ];
    let rows: Vec<String> = rows.iter().map(|r| r.join(" | ")).collect();
    assert_eq!(rows, expected);
    // f8 and f9 are listed with why and where (the file's lines 9 and 10).
    assert_eq!(
        ws.rows(
            "SELECT followup_id, reason, source_file, source_line FROM followup_rejects \
             ORDER BY followup_id"
        ),
        vec![
            strs(&["f8", "before_subject", "followups.csv", "9"]),
            strs(&["f9", "unknown_subject", "followups.csv", "10"]),
        ]
    );

    // By the month of the rating or complaint (decided ones only):
    // rectified on time, September r1 of r1, r2 = 50, October r3 late = 0;
    // called back, September r1 = 100, October r3 = 0 (r2 owed none, r4
    // not yet due); call-backs satisfied, September r1 = 100; bad reviews,
    // September 2 of 2 = 100, October 2 of 3 (r3, r4 of r3-r5) but fewer
    // than its minimum of 5 ratings; complaints rectified on time (the
    // complaints view follows the follow-ups), September k1 late and k3
    // on time = 50, October k2 = 100.
    let value = |id: &str, month: &str| -> Vec<Vec<String>> {
        ws.rows(&format!(
            "SELECT value FROM indicator_values WHERE indicator_id = '{id}' \
             AND dept_id = 'gsc' AND grain = 'month' AND period = '{month}'"
        ))
    };
    for (id, month, expected) in [
        ("bad_review_rectified_on_time_rate", "2026-09", "50.0"),
        ("bad_review_rectified_on_time_rate", "2026-10", "0.0"),
        ("real_name_call_back_rate", "2026-09", "100.0"),
        ("real_name_call_back_rate", "2026-10", "0.0"),
        ("call_back_satisfied_rate", "2026-09", "100.0"),
        ("complaint_rectified_on_time_rate", "2026-09", "50.0"),
        ("complaint_rectified_on_time_rate", "2026-10", "100.0"),
    ] {
        assert_eq!(value(id, month), vec![strs(&[expected])], "{id} {month}");
    }
    assert_eq!(
        ws.rows(
            "SELECT numerator, denominator FROM indicator_values WHERE indicator_id = \
             'bad_review_rate' AND grain = 'month' AND period = '2026-10'"
        ),
        vec![strs(&["2.0", "3.0"])]
    );
}

#[test]
fn case_indicators_worked_by_hand() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put("process_events.jsonl", EVENTS);
    ws.put(
        "complaints.csv",
        "complaint_id,received_at,dept_id,severity,valid,due_at,rectified_at\n\
         k1,2026-03-03 09:00:00,gsc,general,true,2026-03-06 09:00:00,2026-03-05 09:00:00\n\
         k2,2026-03-03 09:00:00,gsc,major,true,2026-03-05 09:00:00,\n\
         k3,2026-03-03 09:00:00,gsc,major,false,2026-03-05 09:00:00,\n\
         k4,2026-03-09 09:00:00,gsc,general,true,2026-03-20 09:00:00,\n",
    );
    run_as_of(&ws, "2026-03-10");
    let value = |id: &str| {
        ws.rows(&format!(
            "SELECT ROUND(value, 4), n FROM indicator_values WHERE dept_id = 'gsc' AND grain = 'month' \
             AND period = '2026-03' AND indicator_id = '{id}'"
        ))
    };
    // On time among decided cases c1 yes, c2 yes, c3 no, c4 no, c7 yes: 3/5.
    assert_eq!(
        value("on_time_resolution_rate"),
        vec![strs(&["60.0", "5.0"])]
    );
    // Resolved c1, c2, c3, c7; reopened c2: 3/4.
    assert_eq!(
        value("first_time_resolution_rate"),
        vec![strs(&["75.0", "4.0"])]
    );
    // (24 + 72 + 26 + 78) / 4 = 50 hours.
    assert_eq!(value("mean_resolution_hours"), vec![strs(&["50.0", "4.0"])]);
    // Sorted 24, 26, 72, 78: rank 0.9 x 3 = 2.7 -> 72 + 0.7 x (78 - 72) = 76.2.
    assert_eq!(value("p90_resolution_hours"), vec![strs(&["76.2", "4.0"])]);
    // Visits over the 7 cases not cancelled: c1 1 + c2 2 = 3 / 7.
    assert_eq!(value("visits_per_case"), vec![strs(&["0.4286", "7.0"])]);
    // Instant known for c1 (no), c2 (yes), c3 (no): 1/3.
    assert_eq!(
        value("instant_handled_share"),
        vec![strs(&["33.3333", "3.0"])]
    );
    // Notified among resolved: c1 and c3 of c1, c2, c3, c7: 2/4.
    assert_eq!(value("result_notified_rate"), vec![strs(&["50.0", "4.0"])]);
    // Responses decided: on time c1, c7; late c2, c3, c4, c5, c8 (default
    // 24 h limit passed without a response); c6 cancelled: 2/7.
    assert_eq!(
        value("on_time_response_rate"),
        vec![strs(&["28.5714", "7.0"])]
    );
    // Valid complaints k1, k2, k4 per 7 cases not cancelled: 3/7 x 1000.
    assert_eq!(
        value("valid_complaint_rate"),
        vec![strs(&["428.5714", "7.0"])]
    );
    // Valid major complaints: k2 only (k3 is not valid): 1/7 x 1000.
    assert_eq!(
        value("major_complaint_rate"),
        vec![strs(&["142.8571", "7.0"])]
    );
    // Rectification decided: k1 on time, k2 overdue (due 5 March, not
    // rectified); k4 not due yet: 1/2.
    assert_eq!(
        value("complaint_rectified_on_time_rate"),
        vec![strs(&["50.0", "2.0"])]
    );
    // Week 2026-W10 (2-8 March) holds c1-c4, c6, c7: on time c1, c2, c7 of
    // c1, c2, c3, c4, c7 = 60%; week 11 holds c5 and c8, both undecided.
    assert_eq!(
        ws.rows(
            "SELECT period, value FROM indicator_values WHERE dept_id = 'gsc' AND grain = 'week' \
             AND indicator_id = 'on_time_resolution_rate' ORDER BY period"
        ),
        vec![strs(&["2026-W10", "60.0"])]
    );
}

#[test]
fn satisfaction_weights_groups_and_leaves_out_removed_ratings() {
    let ws = Workspace::new();
    ws.put_departments();
    // hr is internal_service: it serves client_internal. Overall item only,
    // scale 1-5, so 5 -> 100, 4 -> 75, 1 -> 0.
    ws.put(
        "ratings.csv",
        "rating_id,rated_at,dept_id,rater_id,rater_group,item,score\n\
         r1,2026-03-02 10:00:00,hr,E1,client_internal,overall,5\n\
         r2,2026-03-03 10:00:00,hr,E2,client_internal,overall,5\n\
         r3,2026-03-04 10:00:00,hr,E3,client_internal,overall,4\n\
         r4,2026-03-05 10:00:00,hr,S1,superior,overall,4\n\
         r5,2026-03-05 10:00:00,hr,S2,superior,overall,4\n\
         r6,2026-03-05 10:00:00,hr,S3,superior,overall,4\n\
         r7,2026-03-06 10:00:00,hr,C1,client_external,overall,1\n\
         r8,2026-03-06 11:00:00,hr,E4,client_internal,overall,1\n",
    );
    ws.put(
        "rating_appeals.csv",
        "rating_id,decided_at,decision\nr8,2026-03-08 10:00:00,removed\nr3,2026-03-08 10:00:00,upheld\n",
    );
    run_as_of(&ws, "2026-03-31");
    let rows = ws.rows(
        "SELECT rater_group, n_ratings, n_raters, observed_mean, weighted_mean, value FROM satisfaction \
         WHERE dept_id = 'hr' AND grain = 'month' ORDER BY rater_group",
    );
    // r8 was removed on appeal. Groups: client_internal 100, 100, 75 (mean
    // 91.67, 3 raters); superior 75 x 3; client_external one rater (below
    // the anonymity minimum of 3), shown only as `others`.
    // all: observed = (100 + 100 + 75 + 75 + 75 + 75 + 0) / 7 = 71.43;
    // weighted over the groups present with weight: client 50 (client_internal
    // only: hr does not serve external clients) and superior 25:
    // (50 x 91.667 + 25 x 75) / 75 = 86.11.
    let r = |v: &str| format!("{:.2}", v.parse::<f64>().unwrap());
    let got: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut row = row.clone();
            for cell in &mut row[3..6] {
                if cell != "∅" {
                    *cell = r(cell);
                }
            }
            row
        })
        .collect();
    assert_eq!(
        got,
        vec![
            strs(&["all", "7", "7", "71.43", "86.11", "86.11"]),
            strs(&["client_internal", "3", "3", "91.67", "91.67", "91.67"]),
            strs(&["others", "1", "1", "∅", "∅", "∅"]),
            strs(&["superior", "3", "3", "75.00", "75.00", "75.00"]),
        ]
    );
}

#[test]
fn a_closed_period_keeps_its_published_scores_and_lists_the_restatement() {
    let ws = Workspace::new();
    ws.put_departments();
    let mut ratings = String::from("rating_id,rated_at,dept_id,rater_id,rater_group,item,score\n");
    for i in 1..=6 {
        ratings.push_str(&format!(
            "r{i},2026-03-0{i} 10:00:00,hr,E{i},client_internal,overall,5\n"
        ));
    }
    ratings.push_str("r7,2026-03-09 10:00:00,hr,E7,client_internal,overall,1\n");
    ws.put("ratings/2026-03.csv", ratings);
    ws.put(
        "measurements.csv",
        "dept_id,metric,period_start,numerator,denominator\nhr,process_compliance,2026-03-01,20,20\n",
    );
    // March ends on the 31st and closes 15 days later, on 15 April.
    run_as_of(&ws, "2026-04-20");
    // Satisfaction (6 x 100 + 0) / 7 = 85.714: 4.286 short of 90 costs
    // 8.571 of 20 points -> 11.429; compliance 100% meets 95: 30 points.
    // Only these two (50 of 100 weight) have data: (11.429 + 30) x 2 = 82.86.
    let march = "SELECT total_score, closed FROM department_scores WHERE dept_id = 'hr' AND grain = 'month' AND period = '2026-03'";
    assert_eq!(ws.rows(march), vec![strs(&["82.86", "true"])]);

    // A late appeal removes r7: a recomputation would give satisfaction 100
    // and a total of (20 + 30) x 2 = 100, but March is closed.
    ws.put(
        "rating_appeals.csv",
        "rating_id,decided_at,decision\nr7,2026-04-18 10:00:00,removed\n",
    );
    run_as_of(&ws, "2026-04-20");
    assert_eq!(ws.rows(march), vec![strs(&["82.86", "true"])]);
    let restated = ws.rows(
        "SELECT item, published, recomputed FROM restatements WHERE grain = 'month' AND period = '2026-03' ORDER BY item",
    );
    let items: Vec<&str> = restated.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        items,
        vec![
            "bonus_coefficient",
            "grade",
            "satisfaction.points",
            "satisfaction.value",
            "total_score"
        ]
    );
    // The grade would move from good (80-90) to excellent (90+), and with
    // it the bonus: 2026 links 30%, so 1 + 0.3 x 0 = 1 becomes 1 + 0.3 x 0.20.
    assert_eq!(restated[0], strs(&["bonus_coefficient", "1.0", "1.06"]));
    assert_eq!(restated[1], strs(&["grade", "good", "excellent"]));
    assert_eq!(restated[4], strs(&["total_score", "82.86", "100.0"]));
    // The live value mart shows the recomputation.
    assert_eq!(
        ws.rows("SELECT value FROM indicator_values WHERE indicator_id = 'satisfaction' AND grain = 'month' AND period = '2026-03'"),
        vec![strs(&["100.0"])]
    );
}

#[test]
fn review_rates_and_measurement_indicators_worked_by_hand() {
    let ws = Workspace::new();
    ws.put_departments();
    // gsc serves external clients. Overall items: good = top two levels
    // (4, 5), bad = bottom two (1, 2). The superior's and the `attitude`
    // rows do not count; r6 is removed on appeal.
    ws.put(
        "ratings.csv",
        "rating_id,rated_at,dept_id,rater_id,rater_group,item,score\n\
         r1,2026-01-05 10:00:00,gsc,C1,client_external,overall,5\n\
         r1,2026-01-05 10:00:00,gsc,C1,client_external,attitude,1\n\
         r2,2026-01-06 10:00:00,gsc,C2,client_external,overall,4\n\
         r3,2026-01-07 10:00:00,gsc,C3,client_external,overall,3\n\
         r4,2026-01-08 10:00:00,gsc,C4,client_external,overall,2\n\
         r5,2026-01-09 10:00:00,gsc,S1,superior,overall,1\n\
         r6,2026-01-10 10:00:00,gsc,C6,client_external,overall,1\n",
    );
    ws.put(
        "rating_appeals.csv",
        "rating_id,decided_at,decision\nr6,2026-01-20 10:00:00,removed\n",
    );
    // Audits: January 18 of 20 compliant, February 20 of 20, March 16 of 20.
    // Training: January 30 h for 10 people, February 10 h for 10, March
    // 50 h for 20. Innovation: level 10 for Q1 (one measurement for the
    // quarter).
    ws.put(
        "measurements.csv",
        "dept_id,metric,period_start,period_end,value,numerator,denominator\n\
         gsc,process_compliance,2026-01-01,,,18,20\n\
         gsc,process_compliance,2026-02-01,,,20,20\n\
         gsc,process_compliance,2026-03-01,,,16,20\n\
         gsc,training_hours,2026-01-01,,30,,\n\
         gsc,headcount,2026-01-01,,10,,\n\
         gsc,training_hours,2026-02-01,,10,,\n\
         gsc,headcount,2026-02-01,,10,,\n\
         gsc,training_hours,2026-03-01,,50,,\n\
         gsc,headcount,2026-03-01,,20,,\n\
         gsc,innovation_level,2026-01-01,2026-03-31,10,,\n",
    );
    run_as_of(&ws, "2026-03-31");
    let value = |id: &str, grain: &str| {
        ws.rows(&format!(
            "SELECT period, ROUND(value, 4), n FROM indicator_values WHERE dept_id = 'gsc' \
             AND indicator_id = '{id}' AND grain = '{grain}' ORDER BY period"
        ))
    };
    // Client responses r1 (5), r2 (4), r3 (3), r4 (2): good 2/4, bad 1/4.
    assert_eq!(
        value("good_review_rate", "month"),
        vec![strs(&["2026-01", "50.0", "4.0"])]
    );
    assert_eq!(
        value("bad_review_rate", "month"),
        vec![strs(&["2026-01", "25.0", "4.0"])]
    );
    // Satisfaction: responses r1 (mean of 100 and 0 = 50), r2 75, r3 50,
    // r4 25 from clients (mean 50) and r5 0 from the superior. Weighted
    // client 50, superior 25: (50 x 50 + 25 x 0) / 75 = 33.33; n = 5.
    assert_eq!(
        value("satisfaction", "month"),
        vec![strs(&["2026-01", "33.3333", "5.0"])]
    );
    // Compliance month by month, and the quarter from the summed parts:
    // (18 + 20 + 16) / 60 = 90%, n = 60 audited cases.
    assert_eq!(
        value("process_compliance_rate", "month"),
        vec![
            strs(&["2026-01", "90.0", "20.0"]),
            strs(&["2026-02", "100.0", "20.0"]),
            strs(&["2026-03", "80.0", "20.0"]),
        ]
    );
    assert_eq!(
        value("process_compliance_rate", "quarter"),
        vec![strs(&["2026-Q1", "90.0", "60.0"])]
    );
    // A monthly audit says nothing about weeks.
    assert_eq!(
        value("process_compliance_rate", "week"),
        Vec::<Vec<String>>::new()
    );
    // Training per person-month: Q1 (30 + 10 + 50) / (10 + 10 + 20) = 2.25,
    // not the mean of 3, 1 and 2.5.
    assert_eq!(
        value("training_hours_per_person", "quarter"),
        vec![strs(&["2026-Q1", "2.25", "40.0"])]
    );
    // The quarterly innovation level counts for the quarter and the year,
    // not for any month.
    assert_eq!(
        value("innovations_adopted", "quarter"),
        vec![strs(&["2026-Q1", "10.0", "1.0"])]
    );
    assert_eq!(
        value("innovations_adopted", "year"),
        vec![strs(&["2026", "10.0", "1.0"])]
    );
    assert_eq!(
        value("innovations_adopted", "month"),
        Vec::<Vec<String>>::new()
    );
}

#[test]
fn trimming_the_highest_and_lowest_response_and_the_anonymity_minimum_per_group() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put_policy(&[("trim_extremes = false", "trim_extremes = true")]);
    // hr, March 2026, overall item on 1-5: client_internal r1 5 (100),
    // r2 5 (100), r3 4 (75), r4 3 (50), r5 1 (0); one superior a1 5 (100).
    ws.put(
        "ratings.csv",
        "rating_id,rated_at,dept_id,rater_id,rater_group,item,score\n\
         r1,2026-03-02 10:00:00,hr,E1,client_internal,overall,5\n\
         r2,2026-03-03 10:00:00,hr,E2,client_internal,overall,5\n\
         r3,2026-03-04 10:00:00,hr,E3,client_internal,overall,4\n\
         r4,2026-03-05 10:00:00,hr,E4,client_internal,overall,3\n\
         r5,2026-03-06 10:00:00,hr,E5,client_internal,overall,1\n\
         a1,2026-03-06 10:00:00,hr,S1,superior,overall,5\n",
    );
    run_as_of(&ws, "2026-03-31");
    // 去掉一个最高分和一个最低分: of the six responses the lowest (r5, 0)
    // and one highest (100; ties go to the later rating id, r2) are left
    // out. client_internal keeps 100, 75, 50: mean 75, 2 excluded. The
    // single superior is shown: its anonymity minimum is 1.
    // all: observed (100 + 75 + 50 + 100) / 4 = 81.25; weighted
    // (50 x 75 + 25 x 100) / 75 = 83.33.
    let rows = ws.rows(
        "SELECT rater_group, n_ratings, n_raters, ROUND(observed_mean, 2), ROUND(weighted_mean, 2), \
         excluded_ratings FROM satisfaction WHERE dept_id = 'hr' AND grain = 'month' ORDER BY rater_group",
    );
    assert_eq!(
        rows,
        vec![
            strs(&["all", "4", "4", "81.25", "83.33", "2"]),
            strs(&["client_internal", "3", "3", "75.0", "75.0", "2"]),
            strs(&["superior", "1", "1", "100.0", "100.0", "0"]),
        ]
    );
    // The quarter excludes the same two responses.
    assert_eq!(
        ws.rows(
            "SELECT excluded_ratings FROM satisfaction WHERE dept_id = 'hr' AND grain = 'quarter' \
             AND rater_group = 'all'"
        ),
        vec![strs(&["2"])]
    );
    // Reliability uses the counted responses, 5, 4, 3, 5 on a 5-point item: mean 4.25, variance (0.5625 + 0.0625 +
    // 1.5625 + 0.5625) / 3 = 0.9167; rwg = 1 - 0.9167 / 2 = 0.5417.
    assert_eq!(
        ws.rows(
            "SELECT n_raters, ROUND(rwg, 4) FROM reliability WHERE dept_id = 'hr' AND grain = 'month'"
        ),
        vec![strs(&["4", "0.5417"])]
    );
}

#[test]
fn flagged_ratings_are_excluded_or_scored_on_the_fair_mean_as_the_policy_says() {
    let ratings = "rating_id,rated_at,dept_id,rater_id,rater_group,item,score\n\
         r1,2026-03-02 10:00:00,hr,E1,client_internal,overall,5\n\
         r1,2026-03-02 10:00:00,hr,E1,client_internal,attitude,5\n\
         r2,2026-03-03 10:00:00,hr,E2,client_internal,overall,4\n\
         r2,2026-03-03 10:00:00,hr,E2,client_internal,attitude,3\n\
         r3,2026-03-04 10:00:00,hr,E3,client_internal,overall,3\n\
         r3,2026-03-04 10:00:00,hr,E3,client_internal,attitude,2\n";
    let sat = "SELECT n_ratings, excluded_ratings, ROUND(observed_mean, 2), ROUND(fair_mean, 2), \
               ROUND(value, 2) FROM satisfaction WHERE dept_id = 'hr' AND grain = 'month' AND rater_group = 'all'";
    // Straight-lining from two items, excluded: r1 (5, 5) is left out;
    // r2 = (75 + 50) / 2 = 62.5 and r3 = (50 + 25) / 2 = 37.5 -> 50.
    let ws = Workspace::new();
    ws.put_departments();
    ws.put_policy(&[
        ("handling = \"keep\"", "handling = \"exclude\""),
        ("straight_line_min_items = 5", "straight_line_min_items = 2"),
    ]);
    ws.put("ratings.csv", ratings);
    run_as_of(&ws, "2026-03-31");
    let row = &ws.rows(sat)[0];
    assert_eq!(row[..3], strs(&["2", "1", "50.0"])[..]);
    assert_eq!(row[4], "50.0");
    assert_eq!(
        ws.rows("SELECT rating_id, flag FROM rating_flags WHERE item = 'overall'"),
        vec![strs(&["r1", "straight_line"])]
    );

    // Scored on the fair mean: value is the fair mean, not the observed one.
    let ws = Workspace::new();
    ws.put_departments();
    ws.put_policy(&[("handling = \"keep\"", "handling = \"fair_mean\"")]);
    ws.put("ratings.csv", ratings);
    run_as_of(&ws, "2026-03-31");
    let row = &ws.rows(sat)[0];
    assert_eq!(row[1], "0");
    assert_eq!(row[4], row[3], "value follows fair_mean");
}

/// A follow-up exported after its period closed: the period keeps its
/// published figures, and the difference is listed as a restatement.
#[test]
fn a_late_follow_up_into_a_closed_period_is_a_restatement() {
    let ws = Workspace::new();
    ws.put_departments();
    // A bad review on Monday 2 March, due (5 working days) at the end of
    // Monday 9 March.
    ws.put(
        "ratings.csv",
        "rating_id,rated_at,dept_id,rater_id,rater_group,item,score,real_name\n\
         r1,2026-03-02 10:00:00,gsc,c1,client_external,overall,1,false\n",
    );
    // March closes 15 days after it ends, on 15 April.
    run_as_of(&ws, "2026-04-20");
    let value = "SELECT value FROM indicator_values WHERE indicator_id = \
        'bad_review_rectified_on_time_rate' AND dept_id = 'gsc' AND grain = 'month' AND period = '2026-03'";
    // Not rectified by 9 March: overdue, 0 of 1 on time.
    assert_eq!(ws.rows(value), vec![strs(&["0.0"])]);

    // Its rectification on 5 March arrives in a later export.
    ws.put(
        "followups.csv",
        "followup_id,subject_kind,subject_id,kind,at\nf1,rating,r1,rectified,2026-03-05 16:00:00\n",
    );
    run_as_of(&ws, "2026-04-20");
    assert_eq!(ws.rows(value), vec![strs(&["100.0"])]);
    // The default policy weighs it 10 for external services, target 100%,
    // 1 point off per 5 short: 0% scored 0 points, 100% scores all 10.
    let restated = ws.rows(
        "SELECT item, published, recomputed FROM restatements WHERE dept_id = 'gsc' \
         AND grain = 'month' AND period = '2026-03' \
         AND item LIKE 'bad_review_rectified_on_time_rate.%' ORDER BY item",
    );
    assert_eq!(
        restated,
        vec![
            strs(&["bad_review_rectified_on_time_rate.points", "0.0", "10.0"]),
            strs(&["bad_review_rectified_on_time_rate.value", "0.0", "100.0"]),
        ]
    );
}

#[test]
fn improvement_plans_worked_by_hand() {
    let ws = Workspace::new();
    ws.put_departments();
    // gsc's audited process compliance: July 19 of 20 = 95%, August 18 of
    // 20 = 90%, September 5 of 5, below the indicator's minimum of 10
    // sampled cases: no value. The default policy's target for an
    // external service is 95%.
    ws.put(
        "measurements.csv",
        "dept_id,metric,period_start,numerator,denominator\n\
         gsc,process_compliance,2026-07-01,19,20\n\
         gsc,process_compliance,2026-08-01,18,20\n\
         gsc,process_compliance,2026-09-01,5,5\n",
    );
    ws.put(
        "improvement_plans.csv",
        "plan_id,dept_id,opened_on,reason,reason_ref,indicator,target,measures,owner,due_on\n\
         p1,gsc,2026-06-01,grade,2026-05,process_compliance_rate,,Checklists,Wang,2026-06-30\n\
         p2,gsc,2026-06-15,indicator,process_compliance_rate,process_compliance_rate,92,Training,Li,2026-07-10\n\
         p3,gsc,2026-07-01,grade,2026-06,process_compliance_rate,,Audits,Wang,2026-08-15\n\
         p4,gsc,2026-08-03,audit,AUD-7,,,Archive,Zhang,2026-08-31\n\
         p5,gsc,2026-09-01,complaint,k9,,,Apology,Li,2026-09-30\n\
         p6,gsc,2026-09-10,grade,2026-08,process_compliance_rate,,Review,Wang,2026-10-31\n\
         p7,gsc,2026-08-01,audit,AUD-8,,,Signage,Zhang,2026-08-20\n\
         p8,gsc,2026-09-01,audit,AUD-9,,,Signage,Zhang,2026-08-20\n",
    );
    ws.put(
        "plan_events.csv",
        "event_id,plan_id,kind,at,new_due_on\n\
         e1,p1,done,2026-06-29 10:00:00,\n\
         e2,p2,extended,2026-07-09 10:00:00,2026-07-20\n\
         e3,p2,done,2026-07-25 10:00:00,\n\
         e4,p3,done,2026-08-10 10:00:00,\n\
         e5,p4,extended,2026-09-03 10:00:00,2026-09-30\n\
         e6,p5,done,2026-09-20 10:00:00,\n\
         e7,p5,verified,2026-09-25 10:00:00,\n\
         e8,p7,failed,2026-09-05 10:00:00,\n\
         e9,px,progress,2026-09-05 10:00:00,\n\
         e10,p6,progress,2026-09-05 10:00:00,\n\
         e11,p6,extended,2026-09-20 10:00:00,\n\
         e12,p6,progress,2026-09-21 10:00:00,2026-11-30\n\
         e13,p6,progress,2026-11-02 10:00:00,\n",
    );
    run_as_of(&ws, "2026-10-20");

    // Ingest rejects p8 (due before it was opened), e11 (an extension
    // without its date) and e12 (a date on an event that is not one).
    assert_eq!(
        ws.rows("SELECT \"table\", line, \"column\", reason FROM rejects ORDER BY \"table\", line"),
        vec![
            strs(&["improvement_plans", "9", "due_on", "due_before_opened"]),
            strs(&["plan_events", "12", "new_due_on", "extension_without_date"]),
            strs(&["plan_events", "13", "new_due_on", "date_without_extension"]),
        ]
    );
    // p1: done a day early; verified in July, the first whole month after
    // 30 June: 95 against the policy's 95, met.
    // p2: extended on 9 July, before its 10 July due date, to 20 July;
    // done on 25 July, 5 days late; verified in August: 90 against its own
    // 92, not met.
    // p3: done on time; verified in September, which has no value (5
    // sampled cases of the 10 needed): not measurable.
    // p4: no indicator and no verdict: not measurable once September is
    // over; not done, 50 days overdue on 20 October (31 August + 50); its
    // extension of 3 September came after its due date and is left out.
    // p5: the quality office's verdict of 25 September: met.
    // p6: due 31 October: open, pending (e13 is after as-of).
    // p7: failed by the quality office on 5 September; never done, 61
    // days overdue (20 August + 61), but no longer carried.
    let rows = ws.rows(
        "SELECT plan_id, due_on, extensions, done_on, completion, days_late, verify_period, \
         verification, verified_by, verify_value, verify_target, settled_on, carried, events \
         FROM plan_status ORDER BY plan_id",
    );
    let rows: Vec<String> = rows.iter().map(|r| r.join(" | ")).collect();
    assert_eq!(
        rows,
        [
            "p1 | 2026-06-30 | 0 | 2026-06-29 | on_time | ∅ | 2026-07 | met | indicator | 95.0 | 95.0 | 2026-07-31 | false | 1",
            "p2 | 2026-07-20 | 1 | 2026-07-25 | late | 5 | 2026-08 | not_met | indicator | 90.0 | 92.0 | 2026-08-31 | false | 2",
            "p3 | 2026-08-15 | 0 | 2026-08-10 | on_time | ∅ | 2026-09 | not_measurable | indicator | ∅ | 95.0 | 2026-09-30 | false | 1",
            "p4 | 2026-08-31 | 0 | ∅ | overdue | 50 | 2026-09 | not_measurable | ∅ | ∅ | ∅ | 2026-09-30 | true | 0",
            "p5 | 2026-09-30 | 0 | 2026-09-20 | on_time | ∅ | 2026-10 | met | recorded | ∅ | ∅ | 2026-09-25 | false | 2",
            "p6 | 2026-10-31 | 0 | ∅ | open | ∅ | 2026-11 | pending | ∅ | ∅ | ∅ | ∅ | true | 0",
            "p7 | 2026-08-20 | 0 | ∅ | overdue | 61 | 2026-09 | not_met | recorded | ∅ | ∅ | 2026-09-05 | false | 1",
        ]
    );
    // e5 came after p4's due date, e9 names no plan, e10 is dated before
    // p6 was opened.
    assert_eq!(
        ws.rows(
            "SELECT event_id, reason, source_file, source_line FROM plan_event_rejects \
             ORDER BY source_line"
        ),
        vec![
            strs(&["e5", "extension_after_due", "plan_events.csv", "6"]),
            strs(&["e9", "unknown_plan", "plan_events.csv", "10"]),
            strs(&["e10", "before_plan", "plan_events.csv", "11"]),
        ]
    );
    // Carried from the month opened to the month it left the scorecards,
    // each month as it stood at its end: p2 extended and late by the end
    // of July, not yet verified; p4 not yet due at 31 August, overdue at
    // 30 September; p3 and p6 open in their first month.
    let carried = ws.rows(
        "SELECT plan_id, period, due_on, completion, verification FROM plan_periods \
         ORDER BY plan_id, period",
    );
    let carried: Vec<String> = carried.iter().map(|r| r.join(" ")).collect();
    assert_eq!(
        carried,
        [
            "p1 2026-06 2026-06-30 on_time pending",
            "p1 2026-07 2026-06-30 on_time met",
            "p2 2026-06 2026-07-10 open pending",
            "p2 2026-07 2026-07-20 late pending",
            "p2 2026-08 2026-07-20 late not_met",
            "p3 2026-07 2026-08-15 open pending",
            "p3 2026-08 2026-08-15 on_time pending",
            "p3 2026-09 2026-08-15 on_time not_measurable",
            "p4 2026-08 2026-08-31 open pending",
            "p4 2026-09 2026-08-31 overdue not_measurable",
            "p4 2026-10 2026-08-31 overdue not_measurable",
            "p5 2026-09 2026-09-30 on_time met",
            "p6 2026-09 2026-10-31 open pending",
            "p6 2026-10 2026-10-31 open pending",
            "p7 2026-08 2026-08-20 overdue pending",
            "p7 2026-09 2026-08-20 overdue not_met",
        ]
    );
    // Completed on time, by the month of the due date: June p1 1 of 1;
    // July p2 0 of 1; August p3 of p3, p4, p7 (1 of 3); September p5 1 of
    // 1. Verified met, by the day it fell on: July p1 1 of 1, August p2 0
    // of 1, September p5 and p7 1 of 2 (p3 and p4 not measurable).
    let value = |id: &str, month: &str| -> Vec<Vec<String>> {
        ws.rows(&format!(
            "SELECT numerator, denominator FROM indicator_values WHERE indicator_id = '{id}' \
             AND dept_id = 'gsc' AND grain = 'month' AND period = '{month}'"
        ))
    };
    for (id, month, num, den) in [
        ("plan_completed_on_time_rate", "2026-06", "1.0", "1.0"),
        ("plan_completed_on_time_rate", "2026-07", "0.0", "1.0"),
        ("plan_completed_on_time_rate", "2026-08", "1.0", "3.0"),
        ("plan_completed_on_time_rate", "2026-09", "1.0", "1.0"),
        ("plan_verified_met_rate", "2026-07", "1.0", "1.0"),
        ("plan_verified_met_rate", "2026-08", "0.0", "1.0"),
        ("plan_verified_met_rate", "2026-09", "1.0", "2.0"),
    ] {
        assert_eq!(value(id, month), vec![strs(&[num, den])], "{id} {month}");
    }
    // p4 and p7 are overdue, but p7 left the scorecards with its verdict:
    // one overdue plan carried, short of the default's two.
    assert!(ws
        .rows("SELECT dept_id FROM escalations WHERE rule = 'overdue_plans'")
        .is_empty());
    ws.put_policy(&[("overdue_plans = 2", "overdue_plans = 1")]);
    run_as_of(&ws, "2026-10-20");
    assert_eq!(
        ws.rows("SELECT dept_id, period, count FROM escalations WHERE rule = 'overdue_plans'"),
        vec![strs(&["gsc", "2026-10", "1"])]
    );
}

#[test]
fn follow_up_rules_a_version_changes_apply_from_its_date() {
    let ws = Workspace::new();
    ws.put_departments();
    // From 1 October 2026: ten working days to rectify, and only the
    // lowest answer (0 on 0-100) is a bad review.
    let base = scorecard::policy::DEFAULT_POLICY;
    let (start, end) = (
        base.find("\n[[versions]]\n").unwrap(),
        base.find("[privacy]").unwrap(),
    );
    let second = base[start..end]
        .replace("id = \"2026.1\"", "id = \"2026.2\"")
        .replace("from = \"2024-01-01\"", "from = \"2026-10-01\"");
    ws.put(
        "policy.toml",
        format!(
            "{}{second}[versions.followups]\nrectify_working_days = 10\n\n\
             [versions.followups.bad_review]\nmax_score = 0.0\n\n{}",
            &base[..end],
            &base[end..]
        ),
    );
    // r1 (25 on 0-100) is a bad review under the first rules; r2, the same
    // answer in October, is not; r3 (0) is.
    ws.put(
        "ratings.csv",
        "rating_id,rated_at,dept_id,rater_id,rater_group,item,score,real_name\n\
         r1,2026-09-29 10:00:00,gsc,c1,client_external,overall,2,false\n\
         r2,2026-10-09 09:00:00,gsc,c2,client_external,overall,2,false\n\
         r3,2026-10-09 10:00:00,gsc,c3,client_external,overall,1,false\n",
    );
    run_as_of(&ws, "2026-10-31");
    // r1, 29 September, five working days: 30 September, 8, 9, 10 (a
    // make-up working Saturday) and 12 October. r3, Friday 9 October, ten:
    // 10, 12-16 and 19-22 October. Each ends at 24:00 local, 15:59:59.999999
    // UTC.
    assert_eq!(
        ws.rows("SELECT subject_id, rectify_due_at FROM followup_status ORDER BY subject_id"),
        vec![
            strs(&["r1", "2026-10-12 15:59:59.999999 UTC"]),
            strs(&["r3", "2026-10-22 15:59:59.999999 UTC"]),
        ]
    );
    // Bad reviews among the ratings that can be one: September r1 of r1,
    // October r3 of r2 and r3.
    assert_eq!(
        ws.rows(
            "SELECT period, numerator, denominator FROM indicator_values \
             WHERE indicator_id = 'bad_review_rate' AND grain = 'month' ORDER BY period"
        ),
        vec![
            strs(&["2026-09", "1.0", "1.0"]),
            strs(&["2026-10", "1.0", "2.0"]),
        ]
    );
}
