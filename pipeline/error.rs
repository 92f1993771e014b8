//! Errors with their own exit status, and the exit status of any error.
//! The bottom layer: every other module may use it; it uses none of them.

/// Failures with their own exit status (docs/contract.md#command-line). Anything else
/// that goes wrong exits with 1.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad command line or unusable paths: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The policy file is invalid: exit 2.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Input data problems (missing column, rejects over the limit): exit 3.
    #[error(transparent)]
    Input(#[from] InputFailure),
    /// Another run holds the output folder: exit 1.
    #[error("{0}")]
    Busy(String),
}

/// Every problem found in a policy file, each with its key path.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_problems(.source_name, .problems))]
pub struct PolicyError {
    pub source_name: String,
    pub problems: Vec<String>,
}

fn render_problems(source: &str, problems: &[String]) -> String {
    listed(&format!("policy {source} has"), problems, ":")
}

/// `{head} N problem(s){tail}` and the problems, one per line.
fn listed(head: &str, problems: &[String], tail: &str) -> String {
    let mut s = format!(
        "{head} {} problem{}{tail}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str("\n  - ");
        s.push_str(p);
    }
    s
}

/// Input problems that fail the run with exit status 3.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_failures(.0))]
pub struct InputFailure(pub Vec<String>);

fn render_failures(f: &[String]) -> String {
    listed("input data has", f, "; nothing was published:")
}

/// Exit status for an error: 2 usage or policy, 3 input data, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return match f {
                Failure::Usage(_) | Failure::Policy(_) => 2,
                Failure::Input(_) => 3,
                Failure::Busy(_) => 1,
            };
        }
        if cause.downcast_ref::<PolicyError>().is_some() {
            return 2;
        }
        if cause.downcast_ref::<InputFailure>().is_some() {
            return 3;
        }
    }
    1
}
