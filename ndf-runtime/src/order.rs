//! Compile-time helpers for generated workflows: the `after` ordering rule
//! and names derived from stages. Everything here is `const fn`, evaluated by
//! rustc while it compiles the user's workflow.

/// Node kinds on a step's path, as [`PathSeg::kind`].
pub mod node {
    /// `sequential!`: its children run one after another.
    pub const SEQUENTIAL: u8 = 0;
    /// `parallel!`: its children run concurrently.
    pub const PARALLEL: u8 = 1;
    /// `degrade!`: one of its children serves.
    pub const DEGRADE: u8 = 2;
    /// `orchestrate!`: its phases run one after another.
    pub const ORCHESTRATE: u8 = 3;
}

/// One step down the workflow tree: the kind of node, and which child of it
/// the path takes.
#[derive(Debug, Clone, Copy)]
pub struct PathSeg {
    /// One of the [`node`] kinds.
    pub kind: u8,
    /// The index of the child taken.
    pub child: u32,
}

/// One step of a workflow, in textual order, as the `after` check sees it.
#[derive(Debug, Clone, Copy)]
pub struct OrderStage {
    /// The step's pattern name.
    pub name: &'static str,
    /// Names the step must run after.
    pub after: &'static [&'static str],
    /// The step's place in the tree, from the root.
    pub path: &'static [PathSeg],
}

/// How the steps at two paths are ordered in every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    /// The first completes before the second starts.
    Before,
    /// The first starts after the second completes.
    After,
    /// They run side by side in one `parallel!`.
    Concurrent,
    /// They are alternatives of one `degrade!`: at most one serves.
    Alternative,
}

/// The relation is decided by the node where the two paths part: the order
/// of its children in a sequence, nothing in a parallel group or a
/// degradation chain.
const fn relation(x: &[PathSeg], y: &[PathSeg]) -> Relation {
    let mut d = 0;
    while d < x.len() && d < y.len() && x[d].child == y[d].child {
        d += 1;
    }
    if d >= x.len() || d >= y.len() {
        // The same step stage.
        return Relation::Concurrent;
    }
    match x[d].kind {
        node::PARALLEL => Relation::Concurrent,
        node::DEGRADE => Relation::Alternative,
        _ if x[d].child < y[d].child => Relation::Before,
        _ => Relation::After,
    }
}

/// A message built at compile time.
#[derive(Debug, Clone, Copy)]
pub struct Violation {
    buf: [u8; 512],
    len: usize,
}

impl Violation {
    pub(crate) const fn new() -> Self {
        Self {
            buf: [0; 512],
            len: 0,
        }
    }

    pub(crate) const fn push(mut self, s: &str) -> Self {
        let bytes = s.as_bytes();
        let mut i = 0;
        // Truncate on a char boundary; names are ASCII in practice.
        while i < bytes.len() && self.len < self.buf.len() - 4 {
            self.buf[self.len] = bytes[i];
            self.len += 1;
            i += 1;
        }
        self
    }

    /// The message.
    #[must_use]
    pub const fn as_str(&self) -> &str {
        match core::str::from_utf8(self.buf.split_at(self.len).0) {
            Ok(s) => s,
            Err(_) => "workflow ordering violated",
        }
    }
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The rule: every name in the `after` list of `stages[index]` is the name
/// of a step that completes before it starts in every run: an earlier stage
/// of an enclosing sequence or orchestration, not a task of the same
/// `parallel!` or an alternative of the same `degrade!`. Returns the message
/// for the first name that breaks it.
#[must_use]
pub const fn check_order(stages: &[OrderStage], index: usize, workflow: &str) -> Option<Violation> {
    let stage = stages[index];
    let mut d = 0;
    while d < stage.after.len() {
        let dep = stage.after[d];
        // The most telling relation of any stage with that name: `Before`
        // satisfies the rule; otherwise say why the nearest one does not.
        let mut best: Option<Relation> = None;
        let mut j = 0;
        while j < stages.len() {
            if j != index && str_eq(stages[j].name, dep) {
                let r = relation(stages[j].path, stage.path);
                best = match (best, r) {
                    (Some(Relation::Before), _) | (_, Relation::Before) => Some(Relation::Before),
                    (Some(Relation::Concurrent), _) | (_, Relation::Concurrent) => {
                        Some(Relation::Concurrent)
                    }
                    (Some(Relation::Alternative), _) | (_, Relation::Alternative) => {
                        Some(Relation::Alternative)
                    }
                    _ => Some(Relation::After),
                };
            }
            j += 1;
        }
        let why = match best {
            Some(Relation::Before) => None,
            Some(Relation::Concurrent) => {
                Some("` runs in the same `parallel!` group, so nothing orders them")
            }
            Some(Relation::Alternative) => {
                Some("` is an alternative of the same `degrade!`, so it may not have run")
            }
            Some(Relation::After) => Some("` runs later in `"),
            None => Some("` is not an earlier stage of `"),
        };
        if let Some(why) = why {
            let mut msg = Violation::new()
                .push("step `")
                .push(stage.name)
                .push("` must run after `")
                .push(dep)
                .push("` (its `after` list), but `")
                .push(dep)
                .push(why);
            if matches!(best, None | Some(Relation::After)) {
                msg = msg.push(workflow).push("`");
            }
            return Some(msg);
        }
        d += 1;
    }
    None
}

/// Length of the concatenation of `parts`.
#[must_use]
pub const fn name_len(parts: &[&str]) -> usize {
    let mut len = 0;
    let mut i = 0;
    while i < parts.len() {
        len += parts[i].len();
        i += 1;
    }
    len
}

/// The concatenation of `parts`; `N` must be [`name_len`] of them.
#[must_use]
pub const fn write_name<const N: usize>(parts: &[&str]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut i = 0;
    while i < parts.len() {
        let bytes = parts[i].as_bytes();
        let mut j = 0;
        while j < bytes.len() {
            out[at] = bytes[j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // A struct literal, so that `&[seg!(…)]` is promoted to a `'static` slice.
    macro_rules! seg {
        ($kind:expr, $child:expr) => {
            PathSeg {
                kind: $kind,
                child: $child,
            }
        };
    }

    const fn stage(
        name: &'static str,
        after: &'static [&'static str],
        path: &'static [PathSeg],
    ) -> OrderStage {
        OrderStage { name, after, path }
    }

    const S: u8 = node::SEQUENTIAL;
    const P: u8 = node::PARALLEL;

    #[test]
    fn dependencies_on_earlier_stages_pass() {
        let stages = [
            stage("a", &[], &[seg!(S, 0)]),
            stage("b", &[], &[seg!(S, 1)]),
            stage("c", &["a", "b"], &[seg!(S, 2)]),
        ];
        for i in 0..3 {
            assert!(check_order(&stages, i, "x.y").is_none());
        }
    }

    #[test]
    fn dependencies_on_later_stages_name_both_steps() {
        let stages = [
            stage("a", &["b"], &[seg!(S, 0)]),
            stage("b", &[], &[seg!(S, 1)]),
        ];
        let msg = check_order(&stages, 0, "etl.load").expect("a violation");
        assert_eq!(
            msg.as_str(),
            "step `a` must run after `b` (its `after` list), but `b` runs later in `etl.load`"
        );
    }

    #[test]
    fn dependencies_on_missing_stages_name_the_workflow() {
        let stages = [stage("a", &["z"], &[seg!(S, 0)])];
        let msg = check_order(&stages, 0, "etl.load").expect("a violation");
        assert!(
            msg.as_str()
                .ends_with("`z` is not an earlier stage of `etl.load`"),
            "{}",
            msg.as_str()
        );
    }

    #[test]
    fn dependencies_inside_one_parallel_group_are_rejected() {
        let stages = [
            stage("a", &[], &[seg!(P, 0)]),
            stage("b", &["a"], &[seg!(P, 1)]),
        ];
        let msg = check_order(&stages, 1, "ops.checks").expect("a violation");
        assert!(
            msg.as_str().contains("same `parallel!` group"),
            "{}",
            msg.as_str()
        );
    }

    #[test]
    fn a_sequence_inside_a_parallel_branch_orders_its_own_steps() {
        // parallel!(sequential!(a => b), c): b after a holds, c after a does not.
        let stages = [
            stage("a", &[], &[seg!(P, 0), seg!(S, 0)]),
            stage("b", &["a"], &[seg!(P, 0), seg!(S, 1)]),
            stage("c", &["a"], &[seg!(P, 1)]),
        ];
        assert!(check_order(&stages, 1, "x.y").is_none());
        assert!(check_order(&stages, 2, "x.y").is_some());
    }

    #[test]
    fn alternatives_of_a_degradation_chain_do_not_order_each_other() {
        const D: u8 = node::DEGRADE;
        let stages = [
            stage("a", &[], &[seg!(D, 0)]),
            stage("b", &["a"], &[seg!(D, 1)]),
        ];
        let msg = check_order(&stages, 1, "x.y").expect("a violation");
        assert!(
            msg.as_str().contains("alternative of the same `degrade!`"),
            "{}",
            msg.as_str()
        );
    }

    #[test]
    fn a_parallel_group_is_ordered_after_an_earlier_phase() {
        const O: u8 = node::ORCHESTRATE;
        let stages = [
            stage("plan", &[], &[seg!(O, 0)]),
            stage("a", &["plan"], &[seg!(O, 1), seg!(P, 0)]),
            stage("b", &["plan"], &[seg!(O, 1), seg!(P, 1)]),
        ];
        assert!(check_order(&stages, 1, "x.y").is_none());
        assert!(check_order(&stages, 2, "x.y").is_none());
    }

    #[test]
    fn names_concatenate() {
        const PARTS: &[&str] = &["a", ">", "bc"];
        const BUF: [u8; name_len(PARTS)] = write_name(PARTS);
        assert_eq!(&BUF, b"a>bc");
    }
}
