//! Staff measures through the whole pipeline: facts laid at each person's
//! door through the staff table, and the ones it cannot place listed.

use crate::{strs, Workspace};

/// s1 moves from hr to gsc on 16 March; s2 is in gsc; zz is in no table.
///
/// * r1 (10 March, hr, 5 of 5 = 100) counts for s1 in hr;
/// * r2 (20 March, gsc, 4 = 75) for s1 in gsc;
/// * r3 (20 March, recorded for hr, 1 = 0, a bad review nobody rectified)
///   names s1, who is in gsc by then: listed as other_department, counted
///   for s1 in gsc;
/// * r4 names zz: listed as unknown_staff, counted for no one;
/// * s2 resolved case c1 on time and has a valid complaint.
#[test]
fn facts_count_for_the_department_the_person_was_in() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put(
        "staff.csv",
        "staff_id,name,dept_id,role,valid_from,valid_to\n\
         s1,王伟,hr,staff,,2026-03-15\n\
         s1,王伟,gsc,staff,2026-03-16,\n\
         s2,李娜,gsc,staff,,\n",
    );
    ws.put(
        "ratings.csv",
        "rating_id,rated_at,dept_id,staff_id,rater_id,rater_group,item,score\n\
         r1,2026-03-10 10:00:00,hr,s1,E1,client_internal,overall,5\n\
         r2,2026-03-20 10:00:00,gsc,s1,C1,client_external,overall,4\n\
         r3,2026-03-20 11:00:00,hr,s1,E2,client_internal,overall,1\n\
         r4,2026-03-21 10:00:00,gsc,zz,C2,client_external,overall,3\n",
    );
    ws.put(
        "process_events.csv",
        "case_id,event,at,dept_id,staff_id,due_at\n\
         c1,received,2026-03-02 09:00:00,gsc,,2026-03-09 09:00:00\n\
         c1,resolved,2026-03-05 09:00:00,gsc,s2,\n",
    );
    ws.put(
        "complaints.csv",
        "complaint_id,received_at,dept_id,severity,valid,staff_id\n\
         k1,2026-03-22 09:00:00,gsc,general,true,s2\n",
    );
    ws.run_cli(None, "2026-03-31");
    let rows = ws.rows(
        "SELECT dept_id, staff_id, ratings, observed_mean, bad_reviews, unrectified_bad_reviews, \
         cases, on_time_rate, first_time_rate, valid_complaints, not_eligible_because \
         FROM staff_measures WHERE grain = 'month' ORDER BY dept_id, staff_id",
    );
    assert_eq!(
        rows,
        vec![
            strs(&[
                "gsc",
                "s1",
                "2",
                "37.5",
                "1",
                "1",
                "0",
                "∅",
                "∅",
                "0",
                "few_ratings,unrectified_bad_review"
            ]),
            strs(&[
                "gsc",
                "s2",
                "0",
                "∅",
                "0",
                "0",
                "1",
                "100.0",
                "100.0",
                "1",
                "few_ratings,valid_complaint"
            ]),
            // The bad review in gsc bars s1 for the month in hr too.
            strs(&[
                "hr",
                "s1",
                "1",
                "100.0",
                "0",
                "0",
                "0",
                "∅",
                "∅",
                "0",
                "few_ratings,unrectified_bad_review"
            ]),
        ]
    );
    let exceptions = ws.rows(
        "SELECT \"table\", \"month\", issue, staff_id, dept_id, records, example_id \
         FROM staff_exceptions ORDER BY issue",
    );
    assert_eq!(
        exceptions,
        vec![
            strs(&[
                "ratings",
                "2026-03",
                "other_department",
                "s1",
                "hr",
                "1",
                "r3"
            ]),
            strs(&[
                "ratings",
                "2026-03",
                "unknown_staff",
                "zz",
                "gsc",
                "1",
                "r4"
            ]),
        ]
    );
    // The data-quality page lists them.
    let page = std::fs::read_to_string(ws.out.join("site/data-quality.html")).unwrap();
    assert!(page.contains("id=\"staff-exceptions\""));
    assert!(page.contains("员工表中无此人"));
}

/// Managers' 360 through the pipeline, worked by hand. m1 manages hr; in
/// the first half of 2026 (closed by 2026-08-31: 15 days after its end):
///
/// * superior L1: items 75 and 100, a response of 87.5: shown;
/// * peers P1, P2 at 50: two raters, below 3: `others`, mean withheld;
/// * subordinates s2, s3, s4 at 100: shown;
/// * self at 100: shown, weight 0;
/// * composite (30 x 87.5 + 25 x 100) / 55 = 93.1818.
///
/// A subordinate's rating of s2 (not a manager) is listed as
/// `not_a_manager`. None of it reaches the department's satisfaction.
#[test]
fn a_managers_360_rolls_up_small_groups_and_stays_out_of_department_results() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put(
        "staff.csv",
        "staff_id,name,dept_id,role,valid_from,valid_to\n\
         m1,王伟,hr,manager,,\n\
         s2,李娜,hr,staff,,\n\
         s3,张敏,hr,staff,,\n\
         s4,刘静,hr,staff,,\n",
    );
    ws.put(
        "ratings.csv",
        "rating_id,rated_at,dept_id,staff_id,rater_id,rater_group,item,score\n\
         f1,2026-06-10 10:00:00,hr,m1,L1,superior,overall,4\n\
         f1,2026-06-10 10:00:00,hr,m1,L1,superior,service_culture,5\n\
         f2,2026-06-10 10:00:00,hr,m1,P1,peer,overall,3\n\
         f3,2026-06-10 10:00:00,hr,m1,P2,peer,overall,3\n\
         f4,2026-06-11 10:00:00,hr,m1,s2,subordinate,overall,5\n\
         f5,2026-06-11 10:00:00,hr,m1,s3,subordinate,overall,5\n\
         f6,2026-06-11 10:00:00,hr,m1,s4,subordinate,overall,5\n\
         f7,2026-06-12 10:00:00,hr,m1,m1,self,overall,5\n\
         f8,2026-06-12 10:00:00,hr,s2,s3,subordinate,overall,2\n",
    );
    ws.run_cli(None, "2026-08-31");
    let rows = ws.rows(
        "SELECT period, rater_group, groups, raters, ratings, ROUND(mean, 4), withheld \
         FROM manager_feedback ORDER BY period_start, grain",
    );
    assert_eq!(
        rows,
        vec![
            strs(&["2026-H1", "superior", "superior", "1", "1", "87.5", "∅"]),
            strs(&[
                "2026-H1",
                "subordinate",
                "subordinate",
                "3",
                "3",
                "100.0",
                "∅"
            ]),
            strs(&["2026-H1", "others", "peer", "2", "2", "∅", "below_minimum"]),
            strs(&["2026-H1", "self", "self", "1", "1", "100.0", "∅"]),
            strs(&[
                "2026-H1",
                "composite",
                "superior,subordinate",
                "4",
                "4",
                "93.1818",
                "∅"
            ]),
        ]
    );
    let exceptions = ws.rows("SELECT issue, staff_id, example_id FROM staff_exceptions");
    assert_eq!(exceptions, vec![strs(&["not_a_manager", "s2", "f8"])]);
    // Not a department's rating: no satisfaction, no rater estimates.
    assert!(ws.rows("SELECT * FROM satisfaction").is_empty());
    assert!(ws.rows("SELECT * FROM rater_effects").is_empty());
    // As of 2026-07-14 the half has not closed: nothing published.
    let ws2 = Workspace::new();
    ws2.put_departments();
    ws2.put(
        "staff.csv",
        std::fs::read_to_string(ws.input.join("staff.csv")).unwrap(),
    );
    ws2.put(
        "ratings.csv",
        std::fs::read_to_string(ws.input.join("ratings.csv")).unwrap(),
    );
    ws2.run_cli(None, "2026-07-14");
    assert!(ws2.rows("SELECT * FROM manager_feedback").is_empty());
}
