//! The static site: numbers on the pages agree with the marts, text is
//! escaped, and the data dictionary documents every column.

use std::path::Path;

use scorecard::report::dictionary;

use crate::Workspace;

fn run_samples(ws: &Workspace) {
    ws.run_cli(
        Some(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data_samples")),
        "2026-10-31",
    );
}

/// The text of the element with `id="<id>"` (first occurrence).
fn by_id<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let open = start + html[start..].find('>').unwrap() + 1;
    let close = open + html[open..].find('<').unwrap();
    &html[open..close]
}

#[test]
fn a_department_page_shows_the_marts_numbers() {
    let ws = Workspace::new();
    run_samples(&ws);
    let page = std::fs::read_to_string(ws.out.join("site/departments/hr/2026-09.html")).unwrap();
    let expected = ws.rows(
        "SELECT ROUND(total_score, 2), rank_in_type, ROUND(bonus_coefficient, 3) FROM department_scores \
         WHERE dept_id = 'hr' AND grain = 'month' AND period = '2026-09'",
    );
    let total: f64 = expected[0][0].parse().unwrap();
    assert_eq!(by_id(&page, "total"), format!("{total:.2}"));
    assert_eq!(by_id(&page, "rank"), expected[0][1]);
    let bonus: f64 = expected[0][2].parse().unwrap();
    assert_eq!(by_id(&page, "bonus"), format!("{bonus:.3}"));
    // The satisfaction row: target, value and points as in indicator_scores.
    let row = ws.rows(
        "SELECT ROUND(target, 1), ROUND(value, 1), ROUND(points, 1), ROUND(weight, 1) FROM indicator_scores \
         WHERE dept_id = 'hr' AND grain = 'month' AND period = '2026-09' AND indicator_id = 'satisfaction'",
    );
    let start = page.find("id=\"ind-satisfaction\"").unwrap();
    let tr = &page[start..start + page[start..].find("</tr>").unwrap()];
    let cells: Vec<&str> = tr
        .split("<td class=\"num\">")
        .skip(1)
        .map(|c| &c[..c.find('<').unwrap()])
        .collect();
    let f = |s: &str| format!("{:.1}", s.parse::<f64>().unwrap());
    assert_eq!(cells[0], f(&row[0][0]), "target");
    assert_eq!(cells[1], f(&row[0][1]), "actual");
    assert_eq!(
        cells[2],
        format!("{} / {}", f(&row[0][2]), f(&row[0][3])),
        "points / weight"
    );
    // The latest complete month is also the department's index page, and
    // every period has its overview.
    assert!(ws.out.join("site/departments/hr/index.html").is_file());
    assert!(ws.out.join("site/periods/2026-Q3.html").is_file());
    // The HR download has one row per department for the year.
    let csv = std::fs::read_to_string(ws.out.join("site/downloads/results-2025.csv")).unwrap();
    assert_eq!(csv.lines().count(), 15);
    assert!(csv.starts_with(
        "\u{feff}dept_id,name,dept_type,total_score,grade,rank_in_type,bonus_coefficient,veto"
    ));
    // And as an XLSX workbook (a zip package holding a worksheet).
    let xlsx = std::fs::read(ws.out.join("site/downloads/results-2025.xlsx")).unwrap();
    assert!(xlsx.starts_with(b"PK\x03\x04"));
    assert!(xlsx.windows(24).any(|w| w == b"xl/worksheets/sheet1.xml"));
}

#[test]
fn the_data_dictionary_documents_every_column_of_every_mart() {
    let ws = Workspace::new();
    run_samples(&ws);
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(ws.out.join("marts")).unwrap() {
        let path = entry.unwrap().path();
        let mart = path.file_stem().unwrap().to_str().unwrap().to_string();
        for (column, _) in scorecard::lake::read_schema(&path).unwrap() {
            if dictionary::describe(&mart, &column).is_none() {
                missing.push(format!("{mart}.{column}"));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented columns: {missing:?}");
    // And the page shows it.
    let page = std::fs::read_to_string(ws.out.join("site/data-quality.html")).unwrap();
    assert!(page.contains("marts/department_scores.parquet"));
    assert!(page.contains("1 + phase-in share x the grade&#x27;s bonus change."));
}

#[test]
fn hostile_names_are_escaped_on_department_pages() {
    let ws = Workspace::new();
    let name = "<script>alert(1)</script> & \"引号\" مرحبا 🎉";
    ws.put(
        "departments.csv",
        format!(
            "dept_id,name,dept_type\n../../x,\"{}\",internal_service\n",
            name.replace('"', "\"\"")
        ),
    );
    ws.put(
        "ratings.csv",
        "rating_id,rated_at,dept_id,rater_id,rater_group,item,score\n\
         r1,2026-03-02 10:00:00,../../x,E1,client_internal,overall,5\n",
    );
    ws.put(
        "measurements.csv",
        "dept_id,metric,period_start,numerator,denominator\n../../x,process_compliance,2026-03-01,20,20\n",
    );
    ws.run_cli(None, "2026-03-31");
    let dir = ws
        .out
        .join("site/departments")
        .join(scorecard::lake::file_name("../../x"));
    assert_eq!(dir.file_name().unwrap().to_str().unwrap(), "~2E.~2F..~2Fx");
    let page = std::fs::read_to_string(dir.join("2026-03.html")).unwrap();
    assert!(!page.contains("<script>alert"));
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;引号&quot; مرحبا 🎉")
    );
    // The overview links to it by its safe name.
    // (Attribute values are HTML-escaped: `/` is written `&#x2f;`.)
    let index = std::fs::read_to_string(ws.out.join("site/index.html"))
        .unwrap()
        .replace("&#x2f;", "/");
    assert!(index.contains("href=\"departments/~2E.~2F..~2Fx/2026-03.html\""));
}

/// `html` without the parts of a scorecard that later data may change in a
/// complete period: the links to every period (a new period adds one) and
/// the transferred cases (one still open is counted apart from the hours
/// of those done, and moves into them when it is resolved).
fn without_moving_parts(html: &str) -> String {
    let mut s = html.to_string();
    for (open, close) in [
        ("<p class=\"switcher\">", "</p>"),
        ("<table id=\"case-time\">", "</table>"),
        ("<p class=\"note\" id=\"case-time-open\">", "</p>"),
    ] {
        while let Some(a) = s.find(open) {
            let b = a + s[a..].find(close).unwrap() + close.len();
            s.replace_range(a..b, "");
        }
    }
    s
}

#[test]
fn a_complete_periods_scorecard_does_not_change_with_later_data() {
    // The samples as of the end of July, and as of the end of October: a
    // period complete by July is drawn the same both times (its values, its
    // process limits and signals over the window ending there, its trend
    // direction, no as-of date), apart from the moving parts above.
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("data_samples");
    let (july, october) = (Workspace::new(), Workspace::new());
    july.run_cli(Some(&samples), "2026-07-31");
    october.run_cli(Some(&samples), "2026-10-31");
    let mut compared = 0;
    for dept in std::fs::read_dir(july.out.join("site/departments")).unwrap() {
        let dept = dept.unwrap().path();
        for page in std::fs::read_dir(&dept).unwrap() {
            let name = page.unwrap().file_name().into_string().unwrap();
            // Periods whose quarter had ended by 2026-07-31 (raters are
            // fitted per quarter, so July's fair means move until Q3 is
            // complete), other than the latest complete month and quarter
            // then (2026-06, 2026-Q2), whose pages carry the trend hints
            // until the next period completes: 2026-05 and before, 2026-Q1
            // and before, 2025 and before (the latest complete year both
            // times).
            let label = name.trim_end_matches(".html");
            let complete = match label.len() {
                7 if label.contains('Q') => label <= "2026-Q1",
                7 => label <= "2026-05",
                4 => label <= "2025",
                _ => false,
            };
            if !complete {
                continue;
            }
            let then = std::fs::read_to_string(dept.join(&name)).unwrap();
            let now = std::fs::read_to_string(
                october
                    .out
                    .join("site/departments")
                    .join(dept.file_name().unwrap())
                    .join(&name),
            )
            .unwrap();
            assert!(!then.contains("数据截至"), "{name} shows the as-of date");
            assert_eq!(
                without_moving_parts(&then),
                without_moving_parts(&now),
                "{}/{name}",
                dept.display()
            );
            compared += 1;
        }
    }
    // 14 departments with months from 2024-11 (19 and more each).
    assert!(compared > 14 * 19, "{compared} pages compared");
}

#[test]
fn transferred_cases_still_open_are_counted_apart_from_the_hours() {
    let ws = Workspace::new();
    run_samples(&ws);
    // Worked out from the marts: finance's cases received in May 2026
    // (Shanghai time, UTC+8) that were transferred; the open ones counted,
    // the others' hours added up by the department that held them.
    let read = |name: &str| {
        scorecard::lake::read_parquet(&ws.out.join(format!("marts/{name}.parquet"))).unwrap()
    };
    let (cases, held) = (read("cases"), read("case_time"));
    let (id, dept, status) = (
        scorecard::frame::strs(&cases, "case_id").unwrap(),
        scorecard::frame::strs(&cases, "dept_id").unwrap(),
        scorecard::frame::strs(&cases, "status").unwrap(),
    );
    let received = scorecard::frame::micros(&cases, "received_at").unwrap();
    let moved = scorecard::frame::i64s(&cases, "transfer_count").unwrap();
    // 2026-05-01T00:00+08:00 and 2026-06-01T00:00+08:00 in UTC microseconds
    // (Python: datetime(2026, 4, 30, 16, tzinfo=timezone.utc).timestamp()).
    let (from, to) = (1_777_564_800_000_000, 1_780_243_200_000_000);
    let mut open = 0;
    let mut done = std::collections::HashSet::new();
    for i in 0..cases.height() {
        let in_may = received[i].is_some_and(|t| from <= t && t < to);
        if dept[i].as_deref() == Some("finance") && in_may && moved[i].unwrap_or(0) > 0 {
            match status[i].as_deref() {
                Some("pending" | "overdue") => open += 1,
                _ => {
                    done.insert(id[i].clone().unwrap());
                }
            }
        }
    }
    let (cid, holder, hours) = (
        scorecard::frame::strs(&held, "case_id").unwrap(),
        scorecard::frame::strs(&held, "dept_id").unwrap(),
        scorecard::frame::f64s(&held, "hours").unwrap(),
    );
    let mut by_holder: std::collections::BTreeMap<String, (usize, f64)> = Default::default();
    for i in 0..held.height() {
        if done.contains(cid[i].as_deref().unwrap()) {
            let e = by_holder.entry(holder[i].clone().unwrap()).or_default();
            e.0 += 1;
            e.1 += hours[i].unwrap_or(0.0);
        }
    }
    let mut expected: Vec<String> = by_holder
        .values()
        .map(|(n, h)| format!("{n}/{h:.1}"))
        .collect();
    expected.sort();
    assert!(
        open > 0 && !expected.is_empty(),
        "{open} open, {expected:?}"
    );

    let page =
        std::fs::read_to_string(ws.out.join("site/departments/finance/2026-05.html")).unwrap();
    assert_eq!(
        by_id(&page, "case-time-open"),
        format!("仍在办理的转办事项（未计入上表）: {open}")
    );
    let table = &page[page.find("<table id=\"case-time\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    let cells: Vec<&str> = table
        .split("<td class=\"num\">")
        .skip(1)
        .map(|c| &c[..c.find('<').unwrap()])
        .collect();
    let mut shown: Vec<String> = cells
        .chunks(2)
        .map(|c| format!("{}/{}", c[0], c[1]))
        .collect();
    shown.sort();
    assert_eq!(shown, expected);
}

/// The follow-ups owed at as-of: each department's index page counts
/// them as `followup_status` says, the overview lists the departments
/// with overdue ones, and a complete month's page shows none of it.
#[test]
fn follow_ups_owed_at_as_of_show_on_the_index_pages_only() {
    let ws = Workspace::new();
    run_samples(&ws);
    let counts = ws.rows(
        "SELECT dept_id, \
         SUM(CASE WHEN subject_kind = 'rating' AND rectify_status = 'overdue' THEN 1 ELSE 0 END) AS a, \
         SUM(CASE WHEN subject_kind = 'rating' AND rectify_status = 'open' THEN 1 ELSE 0 END) AS b, \
         SUM(CASE WHEN call_back_status = 'overdue' THEN 1 ELSE 0 END) AS c, \
         SUM(CASE WHEN subject_kind = 'complaint' AND rectify_status = 'overdue' THEN 1 ELSE 0 END) AS d \
         FROM followup_status GROUP BY dept_id ORDER BY dept_id",
    );
    assert!(
        counts
            .iter()
            .any(|r| r[1] != "0" || r[3] != "0" || r[4] != "0"),
        "the samples have overdue follow-ups"
    );
    let overview = std::fs::read_to_string(ws.out.join("site/index.html")).unwrap();
    let listed = &overview[overview.find("id=\"followups-overdue\"").unwrap()..];
    let listed = &listed[..listed.find("</table>").unwrap()];
    for r in &counts {
        let page =
            std::fs::read_to_string(ws.out.join(format!("site/departments/{}/index.html", r[0])))
                .unwrap();
        let table = &page[page.find("id=\"followup-backlog\"").unwrap()..];
        let cells: Vec<&str> = table[..table.find("</table>").unwrap()]
            .split("<td class=\"num\">")
            .skip(1)
            .map(|c| &c[..c.find('<').unwrap()])
            .collect();
        // Rows: bad reviews, call-backs, complaints; columns overdue, open.
        assert_eq!(
            (cells[0], cells[1]),
            (r[1].as_str(), r[2].as_str()),
            "{}",
            r[0]
        );
        assert_eq!(
            (cells[2], cells[4]),
            (r[3].as_str(), r[4].as_str()),
            "{}",
            r[0]
        );
        let href = format!("departments/{}/index.html#followups", r[0]);
        let plans_overdue = ws.rows(&format!(
            "SELECT plan_id FROM plan_status WHERE dept_id = '{}' AND completion = 'overdue' \
             AND carried",
            r[0]
        ));
        let overdue = r[1] != "0" || r[3] != "0" || r[4] != "0" || !plans_overdue.is_empty();
        assert_eq!(
            listed.contains(&href.replace('/', "&#x2f;")),
            overdue,
            "{}",
            r[0]
        );
    }
    let past = std::fs::read_to_string(ws.out.join("site/departments/hr/2026-09.html")).unwrap();
    assert!(!past.contains("id=\"followups\""));
}

/// The front page lists the escalations that hold now: in the samples,
/// those of the `escalations` mart whose run of low grades reaches the
/// latest complete month (October 2026), and every trend flag.
#[test]
fn the_front_page_lists_the_departments_to_call_in_now() {
    let ws = Workspace::new();
    run_samples(&ws);
    let now = ws.rows(
        "SELECT dept_id FROM escalations WHERE rule <> 'lowest_grade_run' OR period >= '2026-10' \
         ORDER BY dept_id, rule, grain, period, detail",
    );
    assert!(!now.is_empty(), "the samples have a department to call in");
    let all = ws.rows("SELECT dept_id FROM escalations");
    assert!(all.len() > now.len(), "and earlier runs, not listed");
    let overview = std::fs::read_to_string(ws.out.join("site/index.html")).unwrap();
    let list = &overview[overview.find("id=\"called-in\"").unwrap()..];
    let list = &list[..list.find("</ul>").unwrap()];
    let linked: Vec<String> = list
        .split("<li><a href=\"departments&#x2f;")
        .skip(1)
        .map(|li| li[..li.find("&#x2f;").unwrap()].to_string())
        .collect();
    assert_eq!(
        linked,
        now.into_iter().map(|r| r[0].clone()).collect::<Vec<_>>()
    );
}

/// Each month's scorecard carries the plans `plan_periods` gives for it,
/// with their completion and verification at the month's end; the front
/// page counts the overdue plans still carried.
#[test]
fn improvement_plans_show_on_the_scorecards_that_carry_them() {
    let ws = Workspace::new();
    run_samples(&ws);
    let carried = ws.rows(
        "SELECT p.dept_id, p.period, p.plan_id, p.completion, p.verification \
         FROM plan_periods p JOIN departments d ON p.dept_id = d.dept_id \
         ORDER BY p.dept_id, p.period, p.plan_id",
    );
    assert!(carried.len() > 50, "the samples carry plans");
    for v in ["met", "not_met", "pending"] {
        assert!(
            carried.iter().any(|r| r[4] == v),
            "the samples have a plan {v}"
        );
    }
    let mut pages: std::collections::BTreeMap<(String, String), Vec<String>> = Default::default();
    for r in &carried {
        pages
            .entry((r[0].clone(), r[1].clone()))
            .or_default()
            .push(r[2].clone());
    }
    for ((dept, month), ids) in &pages {
        let page =
            std::fs::read_to_string(ws.out.join(format!("site/departments/{dept}/{month}.html")))
                .unwrap();
        let table = &page[page.find("id=\"plan-table\"").unwrap()..];
        let table = &table[..table.find("</table>").unwrap()];
        let shown: Vec<&str> = table
            .split("<tr><td>")
            .skip(1)
            .map(|row| &row[..row.find('<').unwrap()])
            .collect();
        assert_eq!(shown, *ids, "{dept} {month}");
    }
    // A month without plans has no plan table: hr's first month, before
    // any plan was opened.
    let first = std::fs::read_to_string(ws.out.join("site/departments/hr/2024-11.html")).unwrap();
    assert!(!pages.contains_key(&("hr".into(), "2024-11".into())));
    assert!(!first.contains("id=\"plan-table\""));

    // The front page's column of overdue plans.
    let overdue = ws.rows(
        "SELECT dept_id, COUNT(*) FROM plan_status WHERE completion = 'overdue' AND carried \
         GROUP BY dept_id ORDER BY dept_id",
    );
    assert!(!overdue.is_empty(), "the samples have an overdue plan");
    let overview = std::fs::read_to_string(ws.out.join("site/index.html")).unwrap();
    let listed = &overview[overview.find("id=\"followups-overdue\"").unwrap()..];
    let listed = &listed[..listed.find("</table>").unwrap()];
    for r in &overdue {
        let row = &listed[listed
            .find(&format!(
                "departments&#x2f;{}&#x2f;index.html#followups",
                r[0]
            ))
            .unwrap()..];
        let row = &row[..row.find("</tr>").unwrap()];
        let last = row.rsplit("<td class=\"num\">").next().unwrap();
        assert_eq!(&last[..last.find('<').unwrap()], r[1], "{}", r[0]);
    }
}

/// The samples in the workspace's input folder, their policy changed.
fn samples_with_policy(ws: &Workspace, changes: &[(&str, &str)]) {
    let samples = crate::samples();
    for f in crate::files_under(&samples) {
        let rel = f
            .strip_prefix(&samples)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let mut bytes = std::fs::read(&f).unwrap();
        if rel == "policy.toml" {
            let mut text = String::from_utf8(bytes).unwrap();
            for (from, to) in changes {
                assert!(text.contains(from), "the samples' policy has {from}");
                text = text.replace(from, to);
            }
            bytes = text.into_bytes();
        }
        ws.put(&rel, bytes);
    }
}

/// The 服务之星 page lists every month's stars with their reasons in the
/// policy's language, and the navigation links to it; with
/// `site.publish_staff = "none"` neither the page nor the link is there.
#[test]
fn the_stars_page_lists_each_months_stars_in_the_sites_language() {
    for (locale, reason, name) in [
        ("zh-CN", "reason_zh", "name"),
        ("en", "reason_en", "name_en"),
    ] {
        let ws = Workspace::new();
        samples_with_policy(
            &ws,
            &[("locale = \"zh-CN\"", &format!("locale = \"{locale}\""))],
        );
        ws.run_cli(None, "2026-10-31");
        let stars = ws.rows(&format!(
            "SELECT {name}, {reason}, CAST(\"final\" AS VARCHAR) FROM service_stars WHERE period = '2026-09'"
        ));
        assert!(!stars.is_empty(), "the samples have stars in 2026-09");
        let page = std::fs::read_to_string(ws.out.join("site/stars.html")).unwrap();
        let (start, end) = (
            page.find("id=\"m-2026-09\"").unwrap(),
            page.find("id=\"m-2026-08\"").unwrap(),
        );
        let month = &page[start..end];
        for s in &stars {
            assert!(month.contains(&s[0]), "{} is on the page", s[0]);
            assert!(month.contains(&s[1]), "{} is on the page", s[1]);
            assert_eq!(s[2], "true", "September is closed by the end of October");
        }
        // October is not closed yet: provisional.
        let october = &page[page.find("id=\"m-2026-10\"").unwrap()..start];
        let provisional = if locale == "en" {
            "provisional"
        } else {
            "暂定"
        };
        assert!(october.contains(provisional));
        assert!(!month.contains(provisional));
        let index = std::fs::read_to_string(ws.out.join("site/index.html")).unwrap();
        assert!(index.contains("href=\"stars.html\""));
    }
    let ws = Workspace::new();
    samples_with_policy(
        &ws,
        &[("publish_staff = \"all\"", "publish_staff = \"none\"")],
    );
    ws.run_cli(None, "2026-10-31");
    assert!(!ws.out.join("site/stars.html").exists());
    assert!(!ws.out.join("site/staff").exists());
    let index = std::fs::read_to_string(ws.out.join("site/index.html")).unwrap();
    assert!(!index.contains("stars.html"));
    assert!(!index.contains("staff/index.html"));
}

/// With `site.publish_staff = "all"` (the samples'), each person with
/// results has a page: their own months beside the department's average,
/// and a manager's 360 as the mart publishes it, in the site's language;
/// the stars page links to it. With "stars" there are no staff pages.
#[test]
fn staff_pages_show_a_persons_own_results_and_a_managers_360() {
    for (locale, heading) in [("zh-CN", "360度反馈"), ("en", "360-degree feedback")] {
        let ws = Workspace::new();
        samples_with_policy(
            &ws,
            &[("locale = \"zh-CN\"", &format!("locale = \"{locale}\""))],
        );
        ws.run_cli(None, "2026-10-31");
        // A front-line person with months: their figures are on the page.
        let person = ws.rows(
            "SELECT staff_id, period, CAST(ratings AS VARCHAR) FROM staff_measures \
             WHERE grain = 'month' AND period = '2026-09' AND ratings > 0 ORDER BY staff_id LIMIT 1",
        );
        let [id, period, _] = &person[0][..] else {
            panic!()
        };
        let page = std::fs::read_to_string(ws.out.join(format!("site/staff/{id}.html"))).unwrap();
        assert!(
            page.contains(&format!("<td>{period}</td>")),
            "{id}'s {period} is listed"
        );
        // No other person's id appears on it.
        let others = ws.rows(&format!(
            "SELECT DISTINCT staff_id FROM staff_measures WHERE staff_id <> '{id}'"
        ));
        assert!(others.iter().all(|o| !page.contains(&o[0])));
        // A manager with a 360 has it on their page, withheld means marked.
        let manager = ws.rows(
            "SELECT staff_id, CAST(count(*) AS VARCHAR) FROM manager_feedback \
             GROUP BY staff_id ORDER BY staff_id LIMIT 1",
        );
        let page =
            std::fs::read_to_string(ws.out.join(format!("site/staff/{}.html", manager[0][0])))
                .unwrap();
        let section = &page[page.find(heading).expect("the 360 section")..];
        let n: usize = manager[0][1].parse().unwrap();
        let rows = section.matches("<tr><td>20").count()
            + section.matches("<tr class=\"total\"><td>20").count();
        assert_eq!(rows, n, "one row per manager_feedback row");
        let index = std::fs::read_to_string(ws.out.join("site/staff/index.html")).unwrap();
        assert!(index.contains(&format!("href=\"{}.html\"", manager[0][0])));
        let stars = std::fs::read_to_string(ws.out.join("site/stars.html")).unwrap();
        assert!(stars.contains("href=\"staff/"));
    }
    let ws = Workspace::new();
    samples_with_policy(
        &ws,
        &[("publish_staff = \"all\"", "publish_staff = \"stars\"")],
    );
    ws.run_cli(None, "2026-10-31");
    assert!(ws.out.join("site/stars.html").exists());
    assert!(!ws.out.join("site/staff").exists());
}

/// The HR lists go to `OUT/hr/`, never the site: one CSV (with BOM) and
/// one XLSX per closed year, headed in the site's language, a row per
/// hr_lists row.
#[test]
fn hr_lists_are_written_for_hr_with_headers_in_the_sites_language() {
    for (locale, first) in [("zh-CN", "年度,部门,名单"), ("en", "Year,Department,List")] {
        let ws = Workspace::new();
        samples_with_policy(
            &ws,
            &[("locale = \"zh-CN\"", &format!("locale = \"{locale}\""))],
        );
        ws.run_cli(None, "2026-10-31");
        let rows = ws.rows("SELECT staff_id FROM hr_lists WHERE period = '2025' ORDER BY staff_id");
        assert!(!rows.is_empty(), "the samples have HR lists for 2025");
        let csv = std::fs::read(ws.out.join("hr/hr-lists-2025.csv")).unwrap();
        assert_eq!(&csv[..3], b"\xEF\xBB\xBF");
        let text = String::from_utf8(csv[3..].to_vec()).unwrap();
        assert!(text.starts_with(first), "{text}");
        assert_eq!(text.lines().count(), rows.len() + 1);
        for r in &rows {
            assert!(text.contains(&r[0]));
        }
        assert!(ws.out.join("hr/hr-lists-2025.xlsx").is_file());
        // 2026 is not closed: no list yet.
        assert!(!ws.out.join("hr/hr-lists-2026.csv").exists());
        assert!(crate::files_under(&ws.out.join("site"))
            .iter()
            .all(|f| !f.to_string_lossy().contains("hr-lists")));
    }
}
