//! The staff table and who served whom: front-line staff receive the
//! service objects' ratings (a skilled person is more likely behind a
//! high score), all staff resolve cases, some complaints and incidents name
//! a person, a few people move to another department. Drawn from a stream
//! of their own, so that the other tables' draws stay as they were.

use super::*;

const SURNAMES: [(&str, &str); 20] = [
    ("王", "Wang"),
    ("李", "Li"),
    ("张", "Zhang"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("黄", "Huang"),
    ("赵", "Zhao"),
    ("吴", "Wu"),
    ("周", "Zhou"),
    ("徐", "Xu"),
    ("孙", "Sun"),
    ("马", "Ma"),
    ("朱", "Zhu"),
    ("胡", "Hu"),
    ("郭", "Guo"),
    ("何", "He"),
    ("林", "Lin"),
    ("罗", "Luo"),
    ("高", "Gao"),
];
const GIVEN: [(&str, &str); 20] = [
    ("伟", "Wei"),
    ("芳", "Fang"),
    ("娜", "Na"),
    ("敏", "Min"),
    ("静", "Jing"),
    ("丽", "Li"),
    ("强", "Qiang"),
    ("磊", "Lei"),
    ("洋", "Yang"),
    ("艳", "Yan"),
    ("勇", "Yong"),
    ("军", "Jun"),
    ("杰", "Jie"),
    ("娟", "Juan"),
    ("涛", "Tao"),
    ("明", "Ming"),
    ("超", "Chao"),
    ("秀英", "Xiuying"),
    ("华", "Hua"),
    ("平", "Ping"),
];

struct Person {
    id: String,
    name: String,
    name_en: String,
    role: &'static str,
    /// Skill, in standard deviations.
    skill: f64,
}

/// One row of the staff table: a person in a department from a day to a
/// day.
struct Stint {
    person: usize,
    dept: usize,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

impl Stint {
    fn covers(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|f| f <= day) && self.to.is_none_or(|t| day <= t)
    }
}

pub(super) struct StaffDraws {
    rng: Rng,
    /// Managers' 360 feedback: a stream of its own, so that adding it
    /// left the other draws as they were.
    feedback_rng: Rng,
    people: Vec<Person>,
    stints: Vec<Stint>,
    /// Per department: its stints, front-line ones first (after the
    /// manager), and how many are front-line.
    by_dept: Vec<(Vec<usize>, usize)>,
}

impl StaffDraws {
    /// Three people per head of the department's establishment and four
    /// more, a manager first; about one in eight client responses a month
    /// per front-line person. `client_per_month`: per department.
    pub(super) fn new(
        seed: u64,
        depts: &[Dept],
        client_per_month: &[f64],
        start: NaiveDate,
        months: u32,
    ) -> StaffDraws {
        let mut rng = Rng(seed ^ 0x5354_4146_4600_0001);
        let mut people = Vec::new();
        let mut stints = Vec::new();
        let mut by_dept = Vec::new();
        for (di, d) in depts.iter().enumerate() {
            let n = 3 * d.headcount as usize + 4;
            let front = ((client_per_month[di] / 8.0).round() as usize).clamp(2, n - 1);
            let mut list = Vec::with_capacity(n);
            for k in 0..n {
                let (s, s_en) = SURNAMES[rng.below(SURNAMES.len() as u64) as usize];
                let (g, g_en) = GIVEN[rng.below(GIVEN.len() as u64) as usize];
                people.push(Person {
                    id: format!("P{:06}", people.len() + 1),
                    name: format!("{s}{g}"),
                    name_en: format!("{s_en} {g_en}"),
                    role: if k == 0 { "manager" } else { "staff" },
                    skill: rng.normal(),
                });
                list.push(stints.len());
                stints.push(Stint {
                    person: people.len() - 1,
                    dept: di,
                    from: None,
                    to: None,
                });
            }
            by_dept.push((list, front));
        }
        // One front-line person in fifty moves to another department's
        // front line on a day in the middle of the period.
        if depts.len() > 1 {
            for di in 0..depts.len() {
                let front: Vec<usize> = by_dept[di].0[1..=by_dept[di].1].to_vec();
                for s in front {
                    if !rng.chance(0.02) {
                        continue;
                    }
                    let to = (di + 1 + rng.below(depts.len() as u64 - 1) as usize) % depts.len();
                    let month = add_months(
                        start,
                        (months / 4 + rng.below(months as u64 / 2 + 1) as u32) as i32,
                    );
                    let day = month + Duration::days(rng.below(28) as i64);
                    stints[s].to = Some(day - Duration::days(1));
                    let person = stints[s].person;
                    by_dept[to].0.insert(1, stints.len());
                    by_dept[to].1 += 1;
                    stints.push(Stint {
                        person,
                        dept: to,
                        from: Some(day),
                        to: None,
                    });
                }
            }
        }
        StaffDraws {
            rng,
            feedback_rng: Rng(seed ^ 0x3336_3046_4200_0001),
            people,
            stints,
            by_dept,
        }
    }

    /// A staff member of department `di` in force on `day`, among the
    /// front line (or all staff), three drawn and one of them chosen with
    /// weight exp(skill x lean): a high `lean` favours the skilled.
    fn pick(&mut self, di: usize, day: NaiveDate, front_only: bool, lean: f64) -> Option<String> {
        let (list, front) = &self.by_dept[di];
        let pool = if front_only {
            &list[1..=*front]
        } else {
            &list[1..]
        };
        let mut cands: Vec<usize> = Vec::with_capacity(3);
        for _ in 0..12 {
            let s = pool[self.rng.below(pool.len() as u64) as usize];
            if self.stints[s].covers(day) {
                cands.push(self.stints[s].person);
                if cands.len() == 3 {
                    break;
                }
            }
        }
        let weights: Vec<f64> = cands
            .iter()
            .map(|&p| (self.people[p].skill * lean).exp())
            .collect();
        let mut x = self.rng.f() * weights.iter().sum::<f64>();
        for (p, w) in cands.iter().zip(&weights) {
            x -= w;
            if x <= 0.0 {
                return Some(self.people[*p].id.clone());
            }
        }
        cands.last().map(|&p| self.people[p].id.clone())
    }

    /// Whether something with this share happens (a rating names its
    /// server).
    pub(super) fn serves(&mut self, share: f64) -> bool {
        self.rng.chance(share)
    }

    /// The person a service object rated with `overall` (1-5) on `day`;
    /// one in a thousand names someone the staff table does not know.
    pub(super) fn for_rating(&mut self, di: usize, day: NaiveDate, overall: i64) -> Option<String> {
        if self.rng.chance(0.001) {
            return Some(format!("P9{:05}", self.rng.below(100_000)));
        }
        self.pick(di, day, true, 0.6 * (overall as f64 - 3.0))
    }

    /// The person who resolved a case.
    pub(super) fn for_case(&mut self, di: usize, day: NaiveDate) -> Option<String> {
        self.pick(di, day, false, 0.0)
    }

    /// The person a complaint or incident names, if it names one (the
    /// less skilled more often).
    pub(super) fn named(&mut self, di: usize, day: NaiveDate, share: f64) -> Option<String> {
        if !self.rng.chance(share) {
            return None;
        }
        self.pick(di, day, true, -0.8)
    }

    /// Managers' 360-degree feedback, each June and December: between the
    /// 10th and the 25th of `month`, for each department's manager, their
    /// superior, three to five peers (other departments' managers) and two
    /// to seven of their staff are asked, each answering with chance 0.7
    /// (so a group may fall below its anonymity minimum), and the manager
    /// rates themselves. Rating ids `F0000001` on (`seq`).
    pub(super) fn feedback(&mut self, month: NaiveDate, depts: &[Dept], seq: &mut u64) -> Vec<Rec> {
        const ITEMS: [&str; 3] = ["service_culture", "staff_development", "overall"];
        let day = month + Duration::days(9);
        let mut out = Vec::new();
        for di in 0..depts.len() {
            let manager = self.stints[self.by_dept[di].0[0]].person;
            let skill = self.people[manager].skill;
            let mut raters: Vec<(&'static str, String, f64)> =
                vec![("superior", format!("L-{}", depts[di].id), 0.0)];
            if depts.len() > 1 {
                for _ in 0..3 + self.feedback_rng.below(3) {
                    let other = (di + 1 + self.feedback_rng.below(depts.len() as u64 - 1) as usize)
                        % depts.len();
                    let peer = self.stints[self.by_dept[other].0[0]].person;
                    raters.push(("peer", self.people[peer].id.clone(), 0.1));
                }
            }
            for _ in 0..2 + self.feedback_rng.below(6) {
                let list = &self.by_dept[di].0;
                let s = list[1 + self.feedback_rng.below(list.len() as u64 - 1) as usize];
                if self.stints[s].covers(day) {
                    raters.push((
                        "subordinate",
                        self.people[self.stints[s].person].id.clone(),
                        -0.2,
                    ));
                }
            }
            raters.sort_by(|a, b| a.1.cmp(&b.1));
            raters.dedup_by(|a, b| a.1 == b.1);
            raters.retain(|_| self.feedback_rng.chance(0.7));
            raters.push(("self", self.people[manager].id.clone(), 0.5));
            for (group, rater, lean) in raters {
                *seq += 1;
                let on = day + Duration::days(self.feedback_rng.below(16) as i64);
                let at = random_time_on(&mut self.feedback_rng, on);
                for item in ITEMS {
                    let latent =
                        1.0 + 4.0 * (0.72 + 0.08 * skill) + lean + 0.6 * self.feedback_rng.normal();
                    out.push(rec(
                        at,
                        vec![
                            ("rating_id", format!("F{:07}", *seq)),
                            ("rated_at", ts(at)),
                            ("dept_id", depts[di].id.clone()),
                            ("staff_id", self.people[manager].id.clone()),
                            ("rater_id", rater.clone()),
                            ("rater_group", group.to_string()),
                            ("item", item.to_string()),
                            ("score", (latent.round().clamp(1.0, 5.0) as i64).to_string()),
                        ],
                    ));
                }
            }
        }
        out
    }

    /// The staff table's rows, with (unless `no_bad`) three bad ones: an
    /// unknown department, a manager without one, and a row overlapping
    /// another of its person.
    pub(super) fn records(&self, depts: &[Dept], no_bad: bool) -> Vec<Rec> {
        let day = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
        let row = |s: &Stint, dept: &str| {
            let p = &self.people[s.person];
            rec(
                NaiveDateTime::default(),
                vec![
                    ("staff_id", p.id.clone()),
                    ("name", p.name.clone()),
                    ("name_en", p.name_en.clone()),
                    ("dept_id", dept.to_string()),
                    ("role", p.role.to_string()),
                    ("valid_from", day(s.from)),
                    ("valid_to", day(s.to)),
                ],
            )
        };
        let mut out: Vec<Rec> = self
            .stints
            .iter()
            .map(|s| row(s, &depts[s.dept].id))
            .collect();
        if !no_bad {
            let first = &self.stints[0];
            let mut unknown = row(first, "NO-SUCH-DEPT");
            unknown.fields[0].1 = "P-BAD-1".into();
            let mut manager = row(first, "");
            manager.fields[0].1 = "P-BAD-2".into();
            let mut overlap = row(&self.stints[1], &depts[first.dept].id);
            overlap.fields[5].1 = "2025-01-01".into();
            out.extend([unknown, manager, overlap]);
        }
        out
    }
}
