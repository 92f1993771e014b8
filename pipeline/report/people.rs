//! Staff pages, with `site.publish_staff = "all"`: `staff/index.html`
//! (everyone by department) and `staff/<id>.html`, one per person: their
//! months and years from `staff_measures` beside their department's
//! average, and for managers their 360 feedback (`manager_feedback`) as
//! published. A page names no one else. A department's average is shown
//! only where at least [`MIN_FOR_AVERAGE`] people have the figure, so that
//! it cannot be taken apart into a colleague's.

use std::collections::{BTreeMap, HashMap};

use super::data::{mart, period_of};
use super::*;
use crate::frame;

/// People with a figure in a department and period before its average is
/// shown: the person and at least three others.
pub const MIN_FOR_AVERAGE: usize = 4;

/// The figures of a person's row that have a department average.
const AVERAGED: usize = 4;

/// One staff_measures row of a person.
#[derive(Debug, Clone)]
pub struct PersonRow {
    pub period: Period,
    pub dept_id: String,
    pub ratings: i64,
    pub good_reviews: i64,
    pub bad_reviews: i64,
    pub cases: i64,
    /// fair_mean, on_time_rate, first_time_rate, composite.
    pub figures: [Option<f64>; AVERAGED],
}

/// One published manager_feedback row.
#[derive(Debug, Clone)]
pub struct FeedbackRow {
    pub period: Period,
    pub dept_id: String,
    pub rater_group: String,
    pub groups: String,
    pub raters: i64,
    pub ratings: i64,
    pub mean: Option<f64>,
    pub withheld: Option<String>,
}

/// What the staff pages show.
#[derive(Debug, Default)]
pub struct StaffData {
    /// Staff id -> name in the site's language, and role.
    pub people: BTreeMap<String, (String, String)>,
    /// Staff id -> their rows, newest first (months, then years).
    pub rows: BTreeMap<String, Vec<PersonRow>>,
    /// (department, period) -> each averaged figure's mean, where enough
    /// people have it.
    pub averages: HashMap<(String, Period), [Option<f64>; AVERAGED]>,
    /// Staff id -> their 360 rows, newest period first.
    pub feedback: BTreeMap<String, Vec<FeedbackRow>>,
}

/// Reads the staff table and the staff marts.
pub fn load(out: &OutDir, english: bool) -> Result<StaffData> {
    let mut d = StaffData::default();
    if let Some(df) = lake::read_table(out, "staff", false)? {
        let s = |c: &str| frame::strs(&df, c);
        let (ids, names, en, roles) = (s("staff_id")?, s("name")?, s("name_en")?, s("role")?);
        let from = frame::dates(&df, "valid_from")?;
        // The latest row names the person.
        let mut order: Vec<usize> = (0..df.height()).collect();
        order.sort_by_key(|&i| from[i]);
        for i in order {
            let Some(id) = ids[i].clone() else { continue };
            let name = if english {
                en[i].clone().or_else(|| names[i].clone())
            } else {
                names[i].clone()
            };
            d.people.insert(
                id,
                (
                    name.unwrap_or_default(),
                    roles[i].clone().unwrap_or_default(),
                ),
            );
        }
    }
    if let Some(df) = mart(out, "staff_measures")? {
        let s = |c: &str| frame::strs(&df, c);
        let (grain, dept, staff) = (s("grain")?, s("dept_id")?, s("staff_id")?);
        let start = frame::dates(&df, "period_start")?;
        let n = |c: &str| frame::i64s(&df, c);
        let (ratings, good, bad, cases) = (
            n("ratings")?,
            n("good_reviews")?,
            n("bad_reviews")?,
            n("cases")?,
        );
        let f = |c: &str| frame::f64s(&df, c);
        let figures = [
            f("fair_mean")?,
            f("on_time_rate")?,
            f("first_time_rate")?,
            f("composite")?,
        ];
        let mut sums: HashMap<(String, Period), [(f64, usize); AVERAGED]> = HashMap::new();
        for i in 0..df.height() {
            let Some(period) = period_of(&grain[i], start[i])
                .filter(|p| matches!(p.grain, Grain::Month | Grain::Year))
            else {
                continue;
            };
            let (Some(dept), Some(staff)) = (dept[i].clone(), staff[i].clone()) else {
                continue;
            };
            let row = PersonRow {
                period,
                dept_id: dept.clone(),
                ratings: ratings[i].unwrap_or(0),
                good_reviews: good[i].unwrap_or(0),
                bad_reviews: bad[i].unwrap_or(0),
                cases: cases[i].unwrap_or(0),
                figures: std::array::from_fn(|k| figures[k][i]),
            };
            let acc = sums.entry((dept, period)).or_default();
            for (a, v) in acc.iter_mut().zip(row.figures) {
                if let Some(v) = v {
                    a.0 += v;
                    a.1 += 1;
                }
            }
            d.rows.entry(staff).or_default().push(row);
        }
        for rows in d.rows.values_mut() {
            rows.sort_by(|a, b| {
                (a.period.grain == Grain::Year, b.period.start, &a.dept_id).cmp(&(
                    b.period.grain == Grain::Year,
                    a.period.start,
                    &b.dept_id,
                ))
            });
        }
        d.averages = sums
            .into_iter()
            .map(|(k, acc)| {
                let avg = acc.map(|(sum, n)| (n >= MIN_FOR_AVERAGE).then(|| sum / n as f64));
                (k, avg)
            })
            .collect();
    }
    if let Some(df) = mart(out, "manager_feedback")? {
        let s = |c: &str| frame::strs(&df, c);
        let dept = s("dept_id")?;
        let (grain, staff, group, groups, withheld) = (
            s("grain")?,
            s("staff_id")?,
            s("rater_group")?,
            s("groups")?,
            s("withheld")?,
        );
        let start = frame::dates(&df, "period_start")?;
        let (raters, ratings) = (frame::i64s(&df, "raters")?, frame::i64s(&df, "ratings")?);
        let mean = frame::f64s(&df, "mean")?;
        for i in 0..df.height() {
            let (Some(period), Some(staff)) = (period_of(&grain[i], start[i]), staff[i].clone())
            else {
                continue;
            };
            d.feedback.entry(staff).or_default().push(FeedbackRow {
                period,
                dept_id: dept[i].clone().unwrap_or_default(),
                rater_group: group[i].clone().unwrap_or_default(),
                groups: groups[i].clone().unwrap_or_default(),
                raters: raters[i].unwrap_or(0),
                ratings: ratings[i].unwrap_or(0),
                mean: mean[i],
                withheld: withheld[i].clone(),
            });
        }
        // Newest year first, its halves before it; the mart's group order
        // within a period.
        for rows in d.feedback.values_mut() {
            rows.sort_by_key(|r| {
                (
                    std::cmp::Reverse(r.period.start.year()),
                    r.period.grain == Grain::Year,
                    r.period.start,
                )
            });
        }
    }
    Ok(d)
}

/// The path of a person's page from the site's top.
pub fn person_path(staff_id: &str) -> String {
    format!("staff/{}.html", lake::file_name(staff_id))
}

impl Site<'_> {
    /// The staff index and one page per person with results.
    pub(super) fn staff_pages(&self, staff: &StaffData, pages: &mut Vec<Page>) {
        // Everyone with staff measures or a 360, and their departments.
        let mut with_results: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (id, rows) in &staff.rows {
            let e = with_results.entry(id).or_default();
            e.extend(rows.iter().map(|r| r.dept_id.as_str()));
        }
        for (id, rows) in &staff.feedback {
            let e = with_results.entry(id).or_default();
            e.extend(rows.iter().map(|r| r.dept_id.as_str()));
        }
        let mut by_dept: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for (id, mut depts) in with_results.clone() {
            let name = staff.people.get(id).map_or(id, |p| p.0.as_str());
            depts.sort_unstable();
            depts.dedup();
            for dept in depts {
                by_dept.entry(dept).or_default().push((id, name));
            }
        }
        let depts: Vec<Value> = by_dept
            .into_iter()
            .map(|(dept, mut people)| {
                people.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
                let people: Vec<Value> = people
                    .into_iter()
                    .map(|(id, name)| {
                        context! {
                            name => name,
                            id => id,
                            href => format!("{}.html", lake::file_name(id)),
                        }
                    })
                    .collect();
                context! { name => self.dept_name(dept), people => people }
            })
            .collect();
        pages.push(Page {
            path: "staff/index.html".into(),
            template: "staff_index.html",
            ctx: context! {
                ..self.base("../", self.t["staff_pages"].clone(), false),
                ..context! { depts => depts }
            },
        });
        let none = Vec::new();
        for id in with_results.keys().copied() {
            let rows = staff.rows.get(id).unwrap_or(&none);
            let (name, role) = staff
                .people
                .get(id)
                .map_or((id, ""), |p| (p.0.as_str(), p.1.as_str()));
            let table = |grain: Grain| -> Vec<Value> {
                rows.iter()
                    .filter(|r| r.period.grain == grain)
                    .map(|r| {
                        let avg = staff
                            .averages
                            .get(&(r.dept_id.clone(), r.period))
                            .copied()
                            .unwrap_or([None; AVERAGED]);
                        context! {
                            period => r.period.label(),
                            dept => self.dept_name(&r.dept_id),
                            ratings => r.ratings,
                            good => r.good_reviews,
                            bad => r.bad_reviews,
                            cases => r.cases,
                            fair => f1(r.figures[0]),
                            fair_avg => f1(avg[0]),
                            on_time => f1(r.figures[1]),
                            on_time_avg => f1(avg[1]),
                            first_time => f1(r.figures[2]),
                            first_time_avg => f1(avg[2]),
                            composite => f1(r.figures[3]),
                            composite_avg => f1(avg[3]),
                        }
                    })
                    .collect()
            };
            let feedback: Vec<Value> = staff
                .feedback
                .get(id)
                .into_iter()
                .flatten()
                .map(|r| {
                    let group = |g: &str| self.t[&format!("group_{g}")].clone();
                    let label = match r.rater_group.as_str() {
                        "others" => format!(
                            "{} ({})",
                            self.t["group_others"],
                            r.groups.split(',').map(group).collect::<Vec<_>>().join(self.t["list_sep"].as_str())
                        ),
                        g => group(g),
                    };
                    context! {
                        period => r.period.label(),
                        group => label,
                        composite => r.rater_group == "composite",
                        raters => r.raters,
                        ratings => r.ratings,
                        mean => f1(r.mean),
                        withheld => r.withheld.as_ref().map(|w| self.t[&format!("withheld_{w}")].clone()),
                    }
                })
                .collect();
            let sections: Vec<Value> = [
                ("person_months", Grain::Month),
                ("person_years", Grain::Year),
            ]
            .into_iter()
            .map(|(title, grain)| (title, table(grain)))
            .filter(|(_, rows)| !rows.is_empty())
            .map(|(title, rows)| context! { title => self.t[title].clone(), rows => rows })
            .collect();
            let stars: Vec<String> = self
                .d
                .stars
                .iter()
                .filter(|s| s.staff_id == *id)
                .map(|s| s.period.label())
                .collect();
            pages.push(Page {
                path: person_path(id),
                template: "person.html",
                ctx: context! {
                    ..self.base("../", name.to_string(), false),
                    ..context! {
                        staff_id => id,
                        manager => role == "manager",
                        note => self.t["person_note"].replace("{n}", &MIN_FOR_AVERAGE.to_string()),
                        sections => sections,
                        feedback => feedback,
                        stars => stars,
                    }
                },
            });
        }
    }
}
