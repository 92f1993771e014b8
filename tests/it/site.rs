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
