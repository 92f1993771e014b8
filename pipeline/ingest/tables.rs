//! The input tables of the data contract (docs/contract.md#inputs): their
//! columns, types, keys and the column that places a record in a month.

/// How a column's text is validated and stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Free text or an identifier, stored as a string.
    Text,
    /// RFC 3339 or local time, stored as UTC microseconds.
    Timestamp,
    /// ISO date.
    Date,
    /// A finite number, optionally with a lower bound.
    Number {
        min: Option<f64>,
    },
    Bool,
    /// One of a fixed set of values.
    Enum(&'static [&'static str]),
    /// A department id that must exist in `departments`.
    DeptRef,
    /// A department type the policy defines.
    DeptType,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

/// What makes two records "the same record" for deduplication.
#[derive(Debug, Clone, Copy)]
pub enum Key {
    Columns(&'static [&'static str]),
    /// `event_id` where given, else every input column.
    EventIdOrAll,
}

#[derive(Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub key: Key,
    /// The column that places a record in `month=YYYY-MM`; `None` for
    /// reference data stored unpartitioned.
    pub month_column: Option<&'static str>,
}

impl TableSpec {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn required(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.columns.iter().filter(|c| c.required).map(|c| c.name)
    }

    /// Columns the lake sorts by inside a partition: event time, then key.
    pub fn sort_columns(&self) -> Vec<&'static str> {
        let mut cols: Vec<&'static str> = self.month_column.into_iter().collect();
        match self.key {
            Key::Columns(k) => cols.extend(k.iter().copied()),
            Key::EventIdOrAll => cols.extend(self.columns.iter().map(|c| c.name)),
        }
        cols.dedup();
        cols
    }
}

const fn req(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        required: true,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        required: false,
    }
}

const TEXT: Kind = Kind::Text;
const TS: Kind = Kind::Timestamp;
const NONNEG: Kind = Kind::Number { min: Some(0.0) };
const ANY_NUMBER: Kind = Kind::Number { min: None };

pub const EVENTS: &[&str] = &[
    "received",
    "responded",
    "transferred",
    "suspended",
    "resumed",
    "resolved",
    "reopened",
    "notified",
    "visit",
    "cancelled",
];

pub const DEPARTMENTS: TableSpec = TableSpec {
    name: "departments",
    columns: &[
        req("dept_id", TEXT),
        req("name", TEXT),
        req("dept_type", Kind::DeptType),
        opt("name_en", TEXT),
        opt("parent_id", Kind::DeptRef),
    ],
    key: Key::Columns(&["dept_id"]),
    month_column: None,
};

/// A staff member's role: `manager`s get 360-degree feedback.
pub const STAFF_ROLES: &[&str] = &["staff", "manager"];

/// Staff (员工): one row per person and stretch of time in one department
/// and role, so a transfer is a new row from its date. `valid_from` empty:
/// since always; `valid_to` empty: still in force (both days included).
pub const STAFF: TableSpec = TableSpec {
    name: "staff",
    columns: &[
        req("staff_id", TEXT),
        req("name", TEXT),
        opt("name_en", TEXT),
        opt("dept_id", Kind::DeptRef),
        req("role", Kind::Enum(STAFF_ROLES)),
        opt("valid_from", Kind::Date),
        opt("valid_to", Kind::Date),
    ],
    key: Key::Columns(&["staff_id", "valid_from"]),
    month_column: None,
};

pub const RATINGS: TableSpec = TableSpec {
    name: "ratings",
    columns: &[
        req("rating_id", TEXT),
        req("rated_at", TS),
        req("dept_id", Kind::DeptRef),
        opt("staff_id", TEXT),
        req("rater_id", TEXT),
        req("rater_group", Kind::Enum(&crate::policy::RATER_GROUPS)),
        req("item", TEXT),
        req("score", ANY_NUMBER),
        opt("scale_min", ANY_NUMBER),
        opt("scale_max", ANY_NUMBER),
        opt("case_id", TEXT),
        opt("channel", TEXT),
        opt("comment", TEXT),
        opt("real_name", Kind::Bool),
    ],
    key: Key::Columns(&["rating_id", "item"]),
    month_column: Some("rated_at"),
};

pub const RATING_APPEALS: TableSpec = TableSpec {
    name: "rating_appeals",
    columns: &[
        req("rating_id", TEXT),
        req("decided_at", TS),
        req("decision", Kind::Enum(&["removed", "upheld"])),
    ],
    key: Key::Columns(&["rating_id"]),
    month_column: Some("decided_at"),
};

pub const PROCESS_EVENTS: TableSpec = TableSpec {
    name: "process_events",
    columns: &[
        req("case_id", TEXT),
        req("event", Kind::Enum(EVENTS)),
        req("at", TS),
        req("dept_id", Kind::DeptRef),
        opt("staff_id", TEXT),
        opt("service_type", TEXT),
        opt("due_at", TS),
        opt("response_due_at", TS),
        opt("instant", Kind::Bool),
        opt("event_id", TEXT),
    ],
    key: Key::EventIdOrAll,
    month_column: Some("at"),
};

pub const COMPLAINTS: TableSpec = TableSpec {
    name: "complaints",
    columns: &[
        req("complaint_id", TEXT),
        req("received_at", TS),
        req("dept_id", Kind::DeptRef),
        req("severity", Kind::Enum(&["major", "general"])),
        req("valid", Kind::Bool),
        opt("case_id", TEXT),
        opt("root_cause", TEXT),
        opt("due_at", TS),
        opt("rectified_at", TS),
        opt("staff_id", TEXT),
    ],
    key: Key::Columns(&["complaint_id"]),
    month_column: Some("received_at"),
};

pub const INCIDENTS: TableSpec = TableSpec {
    name: "incidents",
    columns: &[
        req("incident_id", TEXT),
        req("occurred_at", TS),
        req("dept_id", Kind::DeptRef),
        req("kind", TEXT),
        req("confirmed", Kind::Bool),
        opt("staff_id", TEXT),
    ],
    key: Key::Columns(&["incident_id"]),
    month_column: Some("occurred_at"),
};

pub const MEASUREMENTS: TableSpec = TableSpec {
    name: "measurements",
    columns: &[
        req("dept_id", Kind::DeptRef),
        req("metric", TEXT),
        req("period_start", Kind::Date),
        opt("period_end", Kind::Date),
        opt("value", ANY_NUMBER),
        opt("numerator", NONNEG),
        opt("denominator", NONNEG),
    ],
    key: Key::Columns(&["dept_id", "metric", "period_start", "period_end"]),
    month_column: Some("period_start"),
};

/// What a follow-up is about.
pub const FOLLOWUP_SUBJECTS: &[&str] = &["rating", "complaint"];
/// What a follow-up did: called the rater or complainant back (回访),
/// rectified (整改), explained why nothing was to be rectified (解释说明),
/// or reopened the matter (a later rectification then counts).
pub const FOLLOWUP_KINDS: &[&str] = &["call_back", "rectified", "explained", "reopened"];
pub const CALL_BACK_OUTCOMES: &[&str] = &["satisfied", "partly", "unsatisfied"];

pub const FOLLOWUPS: TableSpec = TableSpec {
    name: "followups",
    columns: &[
        req("followup_id", TEXT),
        req("subject_kind", Kind::Enum(FOLLOWUP_SUBJECTS)),
        req("subject_id", TEXT),
        req("kind", Kind::Enum(FOLLOWUP_KINDS)),
        req("at", TS),
        opt("staff_id", TEXT),
        opt("outcome", Kind::Enum(CALL_BACK_OUTCOMES)),
        opt("note", TEXT),
    ],
    key: Key::Columns(&["followup_id"]),
    month_column: Some("at"),
};

/// Why an improvement plan (《服务质量改进计划》) was opened: a period's
/// grade, an indicator off target, a complaint, an audit finding, a bad
/// review; `reason_ref` names which.
pub const PLAN_REASONS: &[&str] = &["grade", "indicator", "complaint", "audit", "bad_review"];

pub const IMPROVEMENT_PLANS: TableSpec = TableSpec {
    name: "improvement_plans",
    columns: &[
        req("plan_id", TEXT),
        req("dept_id", Kind::DeptRef),
        req("opened_on", Kind::Date),
        req("reason", Kind::Enum(PLAN_REASONS)),
        opt("reason_ref", TEXT),
        opt("indicator", TEXT),
        opt("target", ANY_NUMBER),
        opt("measures", TEXT),
        req("owner", TEXT),
        req("due_on", Kind::Date),
    ],
    key: Key::Columns(&["plan_id"]),
    month_column: Some("opened_on"),
};

/// What happened to a plan: progress reported, measures done, verified or
/// failed by the quality office, due date extended (to `new_due_on`).
pub const PLAN_EVENT_KINDS: &[&str] = &["progress", "done", "verified", "failed", "extended"];

pub const PLAN_EVENTS: TableSpec = TableSpec {
    name: "plan_events",
    columns: &[
        req("event_id", TEXT),
        req("plan_id", TEXT),
        req("kind", Kind::Enum(PLAN_EVENT_KINDS)),
        req("at", TS),
        opt("new_due_on", Kind::Date),
        opt("note", TEXT),
    ],
    key: Key::Columns(&["event_id"]),
    month_column: Some("at"),
};

/// Every input table; `departments` first because the others refer to it,
/// then `staff`, the other table of reference data.
pub const ALL: [&TableSpec; 11] = [
    &DEPARTMENTS,
    &STAFF,
    &RATINGS,
    &RATING_APPEALS,
    &PROCESS_EVENTS,
    &COMPLAINTS,
    &INCIDENTS,
    &MEASUREMENTS,
    &FOLLOWUPS,
    &IMPROVEMENT_PLANS,
    &PLAN_EVENTS,
];

pub fn by_name(name: &str) -> Option<&'static TableSpec> {
    ALL.iter().copied().find(|t| t.name == name)
}
