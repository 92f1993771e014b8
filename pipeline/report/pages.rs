//! The pages: the overview of every period, a department's scorecard per
//! period, the rater audit and the data-quality page, each as the context
//! its template renders.

use super::*;

impl Site<'_> {
    pub(super) fn overviews(&self, pages: &mut Vec<Page>) {
        let latest_month = self.latest(Grain::Month);
        for grain in [Grain::Month, Grain::Quarter, Grain::Year] {
            for period in self.d.periods.get(&grain).cloned().unwrap_or_default() {
                pages.push(Page {
                    path: format!("periods/{}.html", period.label()),
                    template: "overview.html",
                    ctx: self.overview(&period, "../", false),
                });
                if Some(period) == latest_month {
                    pages.push(Page {
                        path: "index.html".into(),
                        template: "overview.html",
                        ctx: self.overview(&period, "", true),
                    });
                }
            }
        }
        if latest_month.is_none() {
            pages.push(Page {
                path: "index.html".into(),
                template: "overview.html",
                ctx: context! { ..self.base("", self.t["site_title"].clone(), true), ..context! { empty => true } },
            });
        }
    }

    /// The overview of `period`; `index` for the site's front page, which
    /// shows the as-of date (a period's own overview shows it only while
    /// the period is partial).
    pub(super) fn overview(&self, period: &Period, root: &str, index: bool) -> Value {
        let prev = self.previous(period);
        let partial = self.as_of.is_some_and(|a| period.is_partial(a));
        let mut by_type: BTreeMap<usize, (String, Vec<Value>)> = BTreeMap::new();
        let mut grades: BTreeMap<String, usize> = BTreeMap::new();
        let mut vetoes = Vec::new();
        for dept in &self.d.depts {
            let Some(s) = self.d.scores.get(&(dept.id.clone(), period.grain, *period)) else {
                continue;
            };
            let before = prev
                .and_then(|q| self.d.scores.get(&(dept.id.clone(), q.grain, q)))
                .and_then(|x| x.total);
            let trend = self
                .d
                .trends
                .get(&(dept.id.clone(), "total_score".into(), period.grain));
            let dir = trend
                .filter(|t| t.latest.as_deref() == Some(&period.label()))
                .map_or("", |t| t.direction.as_str());
            if let Some(g) = &s.grade {
                *grades.entry(g.clone()).or_default() += 1;
            }
            if s.veto {
                vetoes.push(
                    context! { name => dept.name.clone(), reasons => s.veto_reasons.clone() },
                );
            }
            let order = self
                .p
                .department_types
                .keys()
                .position(|k| *k == dept.type_id)
                .unwrap_or(usize::MAX);
            let entry = by_type
                .entry(order)
                .or_insert_with(|| (type_name(self.p, &dept.type_id, self.english), Vec::new()));
            entry.1.push(context! {
                rank => s.rank,
                rank_sort => s.rank.unwrap_or(i64::MAX),
                name => dept.name.clone(),
                href => self.dept_link(root, &dept.id, period),
                total => f2(s.total),
                total_sort => s.total.unwrap_or(-1.0),
                change => signed(s.total.zip(before).map(|(a, b)| a - b)),
                arrow => arrow(dir),
                spark => svg::Drawing::Sparkline(self.total_series(&dept.id, period, 12)).value(),
                grade => self.grade_name(s.grade.as_deref()),
                grade_class => if s.veto { "bad" } else { "" },
                bonus => s.bonus.map(|b| format!("{b:.3}")),
                veto => s.veto,
            });
        }
        let league: Vec<Value> = by_type
            .into_values()
            .map(|(name, mut rows)| {
                rows.sort_by_key(|r| {
                    (
                        r.get_attr("rank_sort")
                            .ok()
                            .and_then(|v| i64::try_from(v).ok())
                            .unwrap_or(i64::MAX),
                        r.get_attr("name")
                            .map(|v| v.to_string())
                            .unwrap_or_default(),
                    )
                });
                context! { name => name, rows => rows }
            })
            .collect();
        let grade_rows: Vec<Value> = self
            .p
            .grades
            .iter()
            .map(|g| context! { name => if self.english { g.name_en.clone() } else { g.name_zh.clone() }, count => grades.get(&g.id).copied().unwrap_or(0) })
            .collect();
        // Watch list and improvers: trend flags at this period, findings.
        let mut watch = Vec::new();
        let mut improvers = Vec::new();
        for ((dept, ind, grain), tr) in &self.d.trends {
            if *grain != period.grain || tr.latest.as_deref() != Some(&period.label()) {
                continue;
            }
            let item = context! { name => self.dept_name(dept), indicator => self.indicator_name(ind), href => self.dept_link(root, dept, period) };
            if tr.flags.iter().any(|f| f == "continuous_improver") && ind == "total_score" {
                improvers.push(item.clone());
            }
            if tr.direction == "declining"
                || tr
                    .flags
                    .iter()
                    .any(|f| f == "short_term_met_long_term_declining")
            {
                let why = if tr
                    .flags
                    .iter()
                    .any(|f| f == "short_term_met_long_term_declining")
                {
                    "met_but_declining"
                } else {
                    "declining"
                };
                watch.push(context! { ..item, ..context! { why => self.t[why].clone(), sort => format!("{dept}{ind}") } });
            }
        }
        watch.sort_by_key(|v| {
            v.get_attr("sort")
                .map(|s| s.to_string())
                .unwrap_or_default()
        });
        improvers.sort_by_key(|v| {
            v.get_attr("name")
                .map(|s| s.to_string())
                .unwrap_or_default()
        });
        let findings: Vec<Value> = self
            .d
            .findings
            .iter()
            .filter(|f| f.grain == period.grain.as_str() && f.period == period.label())
            .map(|f| context! { name => self.dept_name(&f.dept_id), check => self.t.get(&f.check_id).cloned().unwrap_or(f.check_id.clone()), detail => f.detail.clone(), href => self.dept_link(root, &f.dept_id, period) })
            .collect();
        // Follow-ups owed at as-of: on the front page only (they move with
        // as-of).
        let backlogs: Vec<Value> = if index {
            let mut depts: Vec<&String> = self
                .d
                .backlogs
                .keys()
                .chain(self.d.overdue_plans.keys())
                .collect();
            depts.sort();
            depts.dedup();
            let none = data::Backlog::default();
            depts
                .into_iter()
                .map(|id| (id, self.d.backlogs.get(id).unwrap_or(&none), self.d.overdue_plans.get(id).copied().unwrap_or(0)))
                .filter(|(_, b, plans)| b.rectify.0 + b.call_back.0 + b.complaints.0 + plans > 0)
                .map(|(id, b, plans)| context! {
                    name => self.dept_name(id),
                    href => format!("{root}departments/{}/index.html#followups", lake::file_name(id)),
                    rectify => b.rectify.0,
                    call_back => b.call_back.0,
                    complaints => b.complaints.0,
                    plans => plans,
                })
                .collect()
        } else {
            Vec::new()
        };
        let called_in: Vec<Value> = if index {
            self.escalation_reasons(None)
                .into_iter()
                .map(|(id, why)| context! {
                    name => self.dept_name(&id),
                    href => format!("{root}departments/{}/index.html#called-in", lake::file_name(&id)),
                    why => why,
                })
                .collect()
        } else {
            Vec::new()
        };
        let title = format!("{} · {}", self.t["site_title"], period.label());
        // Data freshness shows on a dated overview only, so the others do
        // not change (nor their inputs) from night to night.
        let dated = index || partial;
        let freshness: Vec<Value> = if dated {
            let rows = self.d.freshness.iter();
            rows.map(|(t, l)| context! { table => t.clone(), latest => l.clone() })
                .collect()
        } else {
            Vec::new()
        };
        context! {
            ..self.base(root, title, dated),
            ..context! {
                period => period.label(),
                grain => self.t[&format!("grain_{}", period.grain.as_str())].clone(),
                partial => partial,
                league => league,
                grades => grade_rows,
                vetoes => vetoes,
                watch => watch,
                findings => findings,
                improvers => improvers,
                backlogs => backlogs,
                called_in => called_in,
                switcher => self.switcher(root, &|p| format!("periods/{}.html", p.label())),
                freshness => freshness,
                rejects_total => dated.then_some(self.d.rejects_total),
                downloads => self.d.periods.get(&Grain::Year).map(|ys| ys.iter().rev().map(|y| context! { label => y.label(), href => format!("{root}downloads/results-{}", y.label()) }).collect::<Vec<_>>()).unwrap_or_default(),
            }
        }
    }

    pub(super) fn departments(&self, pages: &mut Vec<Page>) {
        let latest = self.latest(Grain::Month);
        let mut scored: Vec<(&data::Dept, Period)> = Vec::new();
        for dept in &self.d.depts {
            for grain in [Grain::Month, Grain::Quarter, Grain::Year] {
                for period in self.d.periods.get(&grain).into_iter().flatten() {
                    if self
                        .d
                        .scores
                        .contains_key(&(dept.id.clone(), grain, *period))
                    {
                        scored.push((dept, *period));
                    }
                }
            }
        }
        // Most of the site: its contexts are built on every core, and
        // added in the order above.
        let contexts: Vec<Value> = scored
            .par_iter()
            .map(|(dept, period)| self.department(dept, period))
            .collect();
        for ((dept, period), ctx) in scored.into_iter().zip(contexts) {
            let dir = format!("departments/{}", lake::file_name(&dept.id));
            // The latest month's page is also the department's index, in
            // the same folder: one context serves both.
            if Some(period) == latest {
                pages.push(Page {
                    path: format!("{dir}/index.html"),
                    template: "department.html",
                    ctx: ctx.clone(),
                });
            }
            pages.push(Page {
                path: format!("{dir}/{}.html", period.label()),
                template: "department.html",
                ctx,
            });
        }
    }

    pub(super) fn department(&self, dept: &data::Dept, period: &Period) -> Value {
        let root = "../../";
        let key = (dept.id.clone(), period.grain, *period);
        let s = self.d.scores.get(&key);
        let prev = self.previous(period);
        let prev_values: BTreeMap<String, Option<f64>> = prev
            .and_then(|q| self.d.indicators.get(&(dept.id.clone(), q.grain, q)))
            .map(|v| {
                v.iter()
                    .map(|i| (i.indicator_id.clone(), i.value))
                    .collect()
            })
            .unwrap_or_default();
        let series_of = |ind: &str| -> Vec<data::SeriesPoint> {
            self.d
                .series
                .get(&(dept.id.clone(), ind.to_string(), period.grain))
                .map(|v| v.iter().filter(|p| p.period <= *period).cloned().collect())
                .unwrap_or_default()
        };
        let mut categories = Vec::new();
        for cat in CATEGORIES {
            let rows: Vec<Value> = self
                .d
                .indicators
                .get(&key)
                .into_iter()
                .flatten()
                .filter(|i| i.category == cat)
                .map(|i| {
                    let spark: Vec<Option<f64>> = series_of(&i.indicator_id).iter().rev().take(12).rev().map(|p| p.value).collect();
                    let unit = self.d.catalog.get(&i.indicator_id).map(|c| c.unit.clone()).unwrap_or_default();
                    context! {
                        id => i.indicator_id.clone(),
                        name => self.indicator_name(&i.indicator_id),
                        unit => unit,
                        target => f1(i.target),
                        value => f1(i.value),
                        points => f1(i.points),
                        weight => f1(i.weight),
                        status => self.t.get(&format!("status_{}", i.status)).cloned().unwrap_or(i.status.clone()),
                        rag => rag(&i.status),
                        n => i.n.map(|n| format!("{n:.0}")),
                        change => signed(i.value.zip(prev_values.get(&i.indicator_id).copied().flatten()).map(|(a, b)| a - b)),
                        spark => svg::Drawing::Sparkline(spark).value(),
                    }
                })
                .collect();
            if !rows.is_empty() {
                categories.push(
                    context! { name => self.t[&format!("category_{cat}")].clone(), rows => rows },
                );
            }
        }
        let groups: Vec<Value> = self
            .d
            .satisfaction
            .get(&key)
            .into_iter()
            .flatten()
            .map(|g| context! {
                group => self.t.get(&format!("group_{}", g.group)).cloned().unwrap_or(g.group.clone()),
                n_ratings => g.n_ratings,
                n_raters => g.n_raters,
                observed => f1(g.observed),
                weighted => f1(g.weighted),
                fair => f1(g.fair),
                excluded => g.excluded,
                all => g.group == "all",
            })
            .collect();
        let reliability = self.d.reliability.get(&key).map(|(n, rwg)| {
            let weak = *n < 5 || rwg.is_some_and(|r| r < 0.7);
            context! { n_raters => n, rwg => f2(*rwg), weak => weak }
        });
        let targets: BTreeMap<String, f64> = self
            .d
            .indicators
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|i| Some((i.indicator_id.clone(), i.target?)))
            .collect();
        let mut charts = Vec::new();
        let mut chart_ids = vec!["total_score".to_string()];
        let mut by_weight: Vec<&data::IndScore> =
            self.d.indicators.get(&key).into_iter().flatten().collect();
        by_weight.sort_by(|a, b| {
            b.weight
                .unwrap_or(0.0)
                .total_cmp(&a.weight.unwrap_or(0.0))
                .then(a.indicator_id.cmp(&b.indicator_id))
        });
        chart_ids.extend(by_weight.iter().take(3).map(|i| i.indicator_id.clone()));
        for id in chart_ids {
            let pts = series_of(&id);
            let PageWindow {
                limits,
                signals,
                direction,
            } = self.window_at(&id, &pts, period.grain);
            let first = pts.len().saturating_sub(24);
            let chart_points: Vec<svg::ChartPoint> = pts[first..]
                .iter()
                .zip(&signals[first..])
                .map(|(p, &signal)| svg::ChartPoint {
                    label: p.period.label(),
                    value: p.value,
                    signal,
                })
                .collect();
            // A chart with no value is not drawn (`svg::trend_chart`).
            if chart_points.iter().any(|p| p.value.is_some()) {
                let svg = svg::Drawing::Trend {
                    title: self.indicator_name(&id),
                    points: chart_points,
                    target: targets.get(&id).copied(),
                    limits,
                };
                charts.push(context! {
                    name => self.indicator_name(&id),
                    svg => svg.value(),
                    direction => direction.map(|d| self.t.get(&format!("direction_{d}")).cloned().unwrap_or_default()),
                });
            }
        }
        let case_time: Vec<Value> = if period.grain == Grain::Month {
            self.d
                .case_time
                .held
                .get(&(dept.id.clone(), *period))
                .into_iter()
                .flatten()
                .map(|(holder, (n, h))| context! { name => self.dept_name(holder), cases => n, hours => format!("{h:.1}") })
                .collect()
        } else {
            Vec::new()
        };
        let causes: Vec<Value> = if period.grain == Grain::Month {
            self.d
                .root_causes
                .get(&(dept.id.clone(), *period))
                .into_iter()
                .flatten()
                .map(|(c, n)| context! { cause => c.clone(), count => n })
                .collect()
        } else {
            Vec::new()
        };
        let mut flags: Vec<Value> = self
            .d
            .flagged_trends
            .get(&(dept.id.clone(), period.grain))
            .into_iter()
            .flatten()
            .filter_map(|ind| Some((ind, self.d.trends.get(&(dept.id.clone(), ind.clone(), period.grain))?)))
            .filter(|(_, t)| t.latest.as_deref() == Some(&period.label()))
            .map(|(ind, t)| context! { indicator => self.indicator_name(ind), flags => t.flags.iter().map(|f| self.t.get(f).cloned().unwrap_or(f.clone())).collect::<Vec<_>>().join(", "), sort => ind.clone() })
            .collect();
        flags.sort_by_key(|v| {
            v.get_attr("sort")
                .map(|s| s.to_string())
                .unwrap_or_default()
        });
        let findings: Vec<Value> = self
            .d
            .findings
            .iter()
            .filter(|f| f.dept_id == dept.id && f.grain == period.grain.as_str() && f.period == period.label())
            .map(|f| context! { check => self.t.get(&f.check_id).cloned().unwrap_or(f.check_id.clone()), detail => f.detail.clone() })
            .collect();
        let latest = Some(*period) == self.latest(Grain::Month);
        let backlog = latest
            .then(|| self.d.backlogs.get(&dept.id))
            .flatten()
            .map(|b| self.backlog(b));
        let called_in: Vec<String> = if latest {
            self.escalation_reasons(Some(&dept.id))
                .into_iter()
                .map(|(_, why)| why)
                .collect()
        } else {
            Vec::new()
        };
        let plans: Vec<Value> = self
            .d
            .plans
            .get(&(dept.id.clone(), *period))
            .map(|rows| rows.iter().map(|r| self.plan_row(r)).collect())
            .unwrap_or_default();
        let dir = lake::file_name(&dept.id);
        let title = format!("{} · {}", dept.name, period.label());
        let partial = self.as_of.is_some_and(|a| period.is_partial(a));
        context! {
            ..self.base(root, title, partial),
            ..context! {
                name => dept.name.clone(),
                dept_id => dept.id.clone(),
                dept_type => type_name(self.p, &dept.type_id, self.english),
                parent => dept.parent.as_deref().map(|x| self.dept_name(x)),
                period => period.label(),
                grain => self.t[&format!("grain_{}", period.grain.as_str())].clone(),
                overview_href => format!("{root}periods/{}.html", period.label()),
                partial => partial,
                total => f2(s.and_then(|s| s.total)),
                result_points => f1(s.and_then(|s| s.result)),
                process_points => f1(s.and_then(|s| s.process)),
                development_points => f1(s.and_then(|s| s.development)),
                grade => self.grade_name(s.and_then(|s| s.grade.as_deref())),
                rank => s.and_then(|s| s.rank),
                bonus => s.and_then(|s| s.bonus).map(|b| format!("{b:.3}")),
                veto => s.is_some_and(|s| s.veto),
                veto_reasons => s.and_then(|s| s.veto_reasons.clone()),
                coverage => s.and_then(|s| s.coverage).map(|c| format!("{:.0}%", c * 100.0)),
                version => s.map(|s| s.version.clone()),
                categories => categories,
                groups => groups,
                reliability => reliability,
                charts => charts,
                case_time => case_time,
                // Keyed by month: none for other grains.
                case_time_open => self.d.case_time.open.get(&(dept.id.clone(), *period)).copied().unwrap_or(0),
                causes => causes,
                backlog => backlog,
                plans => plans,
                called_in => called_in,
                flags => flags,
                findings => findings,
                switcher => self.switcher(root, &|p| format!("departments/{dir}/{}.html", p.label())),
            }
        }
    }

    /// Why departments are to be called in now, as sentences of the
    /// locale (`esc_<rule>`, with `{n}`, `{first}`, `{last}`, `{indicator}`
    /// and `{period}` filled in): `dept`'s, or every department's. Now: a
    /// run of low grades that reaches the latest complete month, a trend
    /// flag (always at the latest period of its grain), follow-ups overdue
    /// at as-of; the `escalations` mart keeps the earlier runs.
    fn escalation_reasons(&self, dept: Option<&str>) -> Vec<(String, String)> {
        let latest = self
            .latest(Grain::Month)
            .map(|p| p.label())
            .unwrap_or_default();
        self.d
            .escalations
            .iter()
            .filter(|e| dept.is_none_or(|d| d == e.dept_id))
            .filter(|e| e.rule != "lowest_grade_run" || e.period >= latest)
            .map(|e| {
                let (first, last) = e.detail.split_once("..").unwrap_or(("", ""));
                let text = self.t[&format!("esc_{}", e.rule)]
                    .replace("{n}", &e.count.to_string())
                    .replace("{first}", first)
                    .replace("{last}", last)
                    .replace("{indicator}", &self.indicator_name(&e.detail))
                    .replace("{period}", &e.period);
                (e.dept_id.clone(), text)
            })
            .collect()
    }

    /// An improvement plan as a month's scorecard shows it: why, the goal
    /// (indicator and target), owner, due date, completion and verification.
    fn plan_row(&self, r: &data::PlanRow) -> Value {
        let goal = r.indicator.as_deref().map(|ind| {
            let better = match self.d.catalog.get(ind).map(|c| c.direction) {
                Some(crate::model::measure::Direction::Lower) => "≤",
                _ => "≥",
            };
            match r.target {
                Some(t) => format!("{} {better} {}", self.indicator_name(ind), svg::Fixed(t, 1)),
                None => self.indicator_name(ind),
            }
        });
        let completion = self.t[&format!("plan_completion_{}", r.completion)].clone();
        context! {
            id => r.id.clone(),
            why => self.t[&format!("plan_reason_{}", r.reason)].clone(),
            // An indicator by its name, and not twice when it is the goal.
            reason_ref => match (r.reason.as_str(), &r.reason_ref) {
                ("indicator", Some(id)) if r.indicator.as_ref() == Some(id) => None,
                ("indicator", Some(id)) => Some(self.indicator_name(id)),
                (_, reference) => reference.clone(),
            },
            goal => goal,
            measures => r.measures.clone(),
            owner => r.owner.clone(),
            due => r.due.to_string(),
            completion => match r.days_late {
                Some(days) => format!("{completion} ({days} {})", self.t["plan_days"]),
                None => completion,
            },
            completion_class => match r.completion.as_str() {
                "overdue" => "bad",
                "late" => "warn",
                _ => "",
            },
            verification => self.t[&format!("plan_verification_{}", r.verification)].clone(),
        }
    }

    /// A department's follow-ups owed at as-of: counts, and the longest
    /// overdue items.
    fn backlog(&self, b: &data::Backlog) -> Value {
        const SHOWN: usize = 20;
        let rows = [
            ("fu_rectify", b.rectify),
            ("fu_call_back", b.call_back),
            ("fu_complaints", b.complaints),
        ]
        .map(|(key, (overdue, open))| context! { name => self.t[key].clone(), overdue => overdue, open => open });
        let items: Vec<Value> = b
            .overdue
            .iter()
            .take(SHOWN)
            .map(|o| {
                context! {
                    kind => self.t[&format!("fu_kind_{}", o.kind)].clone(),
                    id => o.id.clone(),
                    what => self.t[&format!("fu_do_{}", o.what)].clone(),
                    received => o.received.to_string(),
                    due => o.due.to_string(),
                    days => self.as_of.map(|a| (a - o.due).num_days()),
                }
            })
            .collect();
        context! {
            rows => rows.to_vec(),
            items => items,
            more => b.overdue.len().saturating_sub(SHOWN),
        }
    }

    pub(super) fn raters_page(&self) -> Page {
        let flagged: Vec<Value> = self
            .d
            .flagged
            .iter()
            .map(|e| context! {
                rater => e.rater_id.clone(),
                period => e.period.clone(),
                n => e.n_ratings,
                depts => e.n_depts,
                severity => format!("{:+.1}", e.severity),
                se => format!("{:.1}", e.se),
                flags => e.flags.split(',').map(|f| self.t.get(f).cloned().unwrap_or(f.to_string())).collect::<Vec<_>>().join(", "),
            })
            .collect();
        let counts: Vec<Value> = self
            .d
            .flag_counts
            .iter()
            .map(|(f, n)| context! { flag => self.t.get(f).cloned().unwrap_or(f.clone()), count => n })
            .collect();
        Page {
            path: "raters.html".into(),
            template: "raters.html",
            ctx: context! {
                ..self.base("", self.t["rater_audit"].clone(), true),
                ..context! {
                    flagged => flagged,
                    counts => counts,
                    histogram => Value::from_safe_string(svg::histogram(&self.t["severity_distribution"], &self.d.severities, 2.0)),
                    n_raters => self.d.severities.len(),
                }
            },
        }
    }

    /// 服务之星: every month's stars, the latest first.
    pub(super) fn stars_page(&self) -> Page {
        let st = &self.p.staff;
        let mut months: Vec<Value> = Vec::new();
        let mut i = 0;
        while i < self.d.stars.len() {
            let period = self.d.stars[i].period;
            let rows: Vec<Value> = self.d.stars[i..]
                .iter()
                .take_while(|s| s.period == period)
                .map(|s| {
                    context! {
                        dept => self.dept_name(&s.dept_id),
                        href => self.dept_link("", &s.dept_id, &period),
                        rank => s.rank,
                        name => s.name.clone(),
                        person => self.d.people.as_ref().map(|_| people::person_path(&s.staff_id)),
                        composite => f1(s.composite),
                        ratings => s.ratings,
                        fair => f1(s.fair_mean),
                        run => s.run_months,
                        reason => s.reason.clone(),
                    }
                })
                .collect();
            i += rows.len();
            months.push(context! {
                label => period.label(),
                provisional => !self.d.stars[i - 1].is_final,
                stars => rows,
            });
        }
        let rule = self.t["stars_rule"]
            .replace("{min_ratings}", &st.stars.min_ratings.to_string())
            .replace("{min_composite}", &format!("{:.0}", st.stars.min_composite))
            .replace("{top}", &st.stars.top.to_string())
            .replace(
                "{per}",
                &self.t[if st.stars.per == "organisation" {
                    "stars_per_organisation"
                } else {
                    "stars_per_department"
                }],
            );
        Page {
            path: "stars.html".into(),
            template: "stars.html",
            ctx: context! {
                ..self.base("", self.t["service_stars"].clone(), true),
                ..context! { months => months, rule => rule }
            },
        }
    }

    pub(super) fn data_quality_page(&self, out: &OutDir) -> Result<Page> {
        let (tables, rejects) = data_summary(out)?;
        let log = crate::ingest::read_log(out)?;
        let files: Vec<Value> = log
            .iter()
            .map(|f| context! { table => f.table.clone(), file => f.file.clone(), encoding => f.encoding.clone(), records => f.records, rejected => f.rejected, sha => f.sha256[..12].to_string() })
            .collect();
        let marts: Vec<Value> = mart_schemas(out)?
            .into_iter()
            .map(|(name, schema)| {
                let cols: Vec<Value> = schema
                    .into_iter()
                    .map(|(c, ty)| context! { name => c.clone(), dtype => ty, description => dictionary::describe(&name, &c).unwrap_or("") })
                    .collect();
                context! { name => name, columns => cols }
            })
            .collect();
        Ok(Page {
            path: "data-quality.html".into(),
            template: "data_quality.html",
            ctx: context! {
                ..self.base("", self.t["data_quality"].clone(), true),
                ..context! {
                    tables => tables,
                    rejects => rejects,
                    files => files,
                    marts => marts,
                    followup_rejects => left_out(&self.d.followup_rejects),
                    plan_rejects => left_out(&self.d.plan_rejects),
                    staff_exceptions => self.d.staff_exceptions.iter().map(|((table, issue), e)| context! { table => table.clone(), issue => self.t.get(&format!("staff_issue_{issue}")).cloned().unwrap_or(issue.clone()), records => e.records, people => e.staff_ids, staff => e.first.0.clone(), month => e.first.1.clone(), id => e.first.2.clone() }).collect::<Vec<_>>(),
                    restatements => self.d.restated.iter().map(|r| context! { name => self.dept_name(&r.dept_id), period => r.period.clone(), item => r.item.clone(), published => r.published.clone(), recomputed => r.recomputed.clone() }).collect::<Vec<_>>(),
                }
            },
        })
    }

    /// XmR limits (center, upper, lower), per point whether a run rule
    /// fired, and the direction of indicator `id`'s series `pts`, as the
    /// trend stage works them out (`model::trends::analyse`) but over the
    /// trend window that ends at the last complete period among `pts`
    /// rather than at the latest one: a page of a past period shows the
    /// process as it stood then, and later data never changes it.
    pub(super) fn window_at(
        &self,
        id: &str,
        pts: &[data::SeriesPoint],
        grain: Grain,
    ) -> PageWindow {
        let complete: Vec<usize> = (0..pts.len())
            .filter(|&i| !self.as_of.is_some_and(|a| pts[i].period.is_partial(a)))
            .collect();
        let values: Vec<Option<f64>> = complete.iter().map(|&i| pts[i].value).collect();
        let win = trends::trend_window(&values, self.p.trends.window_for(grain.as_str()));
        let xs: Vec<f64> = win.iter().map(|w| w.1).collect();
        // `total_score` is not in the catalog: higher is better.
        let side = self
            .d
            .catalog
            .get(id)
            .map_or(Direction::Higher, |c| c.direction);
        let mk = (xs.len() >= 2).then(|| trends::mann_kendall(&xs));
        let direction = (!complete.is_empty())
            .then(|| trends::direction(xs.len(), mk.as_ref(), side, &self.p.trends).0);
        let mut signals = vec![false; pts.len()];
        let limits = trends::xmr(&xs);
        if let Some(l) = &limits {
            for (w, rules) in trends::run_rules(&xs, l).iter().enumerate() {
                signals[complete[win[w].0]] = !rules.is_empty();
            }
        }
        PageWindow {
            limits: limits.map(|l| (l.center, l.ucl, l.lcl)),
            signals,
            direction,
        }
    }
}

/// A chart's series as a page draws it (see [`Site::window_at`]).
pub(super) struct PageWindow {
    /// Center, upper and lower process limits.
    limits: Option<(f64, f64, f64)>,
    /// Per point: whether a run rule fired.
    signals: Vec<bool>,
    /// `improving`, `declining` or `no_trend`; none before a complete period.
    direction: Option<&'static str>,
}

/// Rows left out by reason, as the data-quality page lists them.
fn left_out(by_reason: &BTreeMap<String, (usize, String, i64, String)>) -> Vec<Value> {
    by_reason
        .iter()
        .map(|(reason, (n, file, line, id))| context! { reason => reason.clone(), count => n, file => file.clone(), line => line, id => id.clone() })
        .collect()
}
