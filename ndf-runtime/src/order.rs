//! Compile-time helpers for generated workflows: the `after` ordering rule
//! and names derived from stages. Everything here is `const fn`, evaluated by
//! rustc while it compiles the user's workflow.

/// One step of a workflow, in execution order, as the `after` check sees it.
#[derive(Debug, Clone, Copy)]
pub struct OrderStage {
    /// The step's pattern name.
    pub name: &'static str,
    /// Names the step must run after.
    pub after: &'static [&'static str],
    /// Steps of one `parallel!` group share a group; a sequence gives each
    /// step its own.
    pub group: u32,
}

/// A message built at compile time.
#[derive(Debug, Clone, Copy)]
pub struct Violation {
    buf: [u8; 512],
    len: usize,
}

impl Violation {
    const fn new() -> Self {
        Self {
            buf: [0; 512],
            len: 0,
        }
    }

    const fn push(mut self, s: &str) -> Self {
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

/// The rule: every name in the `after` list of `stages[index]` is the name of
/// an earlier stage that is not in the same parallel group. Returns the
/// message for the first name that breaks it.
#[must_use]
pub const fn check_order(stages: &[OrderStage], index: usize, workflow: &str) -> Option<Violation> {
    let stage = stages[index];
    let mut d = 0;
    while d < stage.after.len() {
        let dep = stage.after[d];
        let mut found_earlier = false;
        let mut same_group = false;
        let mut j = 0;
        while j < stages.len() {
            if str_eq(stages[j].name, dep) {
                if stages[j].group == stage.group && j != index {
                    same_group = true;
                } else if j < index {
                    found_earlier = true;
                }
            }
            j += 1;
        }
        if !found_earlier {
            let why = if same_group {
                "` runs in the same `parallel!` group, so nothing orders them"
            } else {
                "` is not an earlier stage of `"
            };
            let mut msg = Violation::new()
                .push("step `")
                .push(stage.name)
                .push("` must run after `")
                .push(dep)
                .push("` (its `after` list), but `")
                .push(dep)
                .push(why);
            if !same_group {
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

    const fn stage(name: &'static str, after: &'static [&'static str], group: u32) -> OrderStage {
        OrderStage { name, after, group }
    }

    #[test]
    fn dependencies_on_earlier_stages_pass() {
        let stages = [
            stage("a", &[], 0),
            stage("b", &[], 1),
            stage("c", &["a", "b"], 2),
        ];
        for i in 0..3 {
            assert!(check_order(&stages, i, "x.y").is_none());
        }
    }

    #[test]
    fn dependencies_on_later_or_missing_stages_name_both_steps() {
        let stages = [stage("a", &["b"], 0), stage("b", &[], 1)];
        let msg = check_order(&stages, 0, "etl.load").expect("a violation");
        assert_eq!(
            msg.as_str(),
            "step `a` must run after `b` (its `after` list), but `b` is not an earlier stage of `etl.load`"
        );
    }

    #[test]
    fn dependencies_inside_one_parallel_group_are_rejected() {
        let stages = [stage("a", &[], 0), stage("b", &["a"], 0)];
        let msg = check_order(&stages, 1, "ops.checks").expect("a violation");
        assert!(
            msg.as_str().contains("same `parallel!` group"),
            "{}",
            msg.as_str()
        );
    }

    #[test]
    fn names_concatenate() {
        const PARTS: &[&str] = &["a", ">", "bc"];
        const BUF: [u8; name_len(PARTS)] = write_name(PARTS);
        assert_eq!(&BUF, b"a>bc");
    }
}
