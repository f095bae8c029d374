//! `-- groundwork:lint allow RULE[, RULE] because REASON`: a finding the author has
//! weighed, silenced for one statement, with the reason kept in the file.

/// The comment marker.
pub const ALLOW_MARKER: &str = "groundwork:lint allow";

/// One `allow` comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allow {
    /// The rules it silences.
    pub rules: Vec<String>,
    /// Why; empty when the comment gives none (which is itself a finding).
    pub reason: String,
}

impl Allow {
    /// Whether it silences `rule`.
    pub fn covers(&self, rule: &str) -> bool {
        !self.reason.is_empty() && self.rules.iter().any(|r| r == rule)
    }
}

/// Every `allow` comment in `text` (the comments before a statement and the
/// statement itself).
pub fn allows(text: &str) -> Vec<Allow> {
    text.lines()
        .filter_map(|line| {
            let comment = &line[line.find("--")? + 2..];
            let rest = comment.trim().strip_prefix(ALLOW_MARKER)?;
            let (rules, reason) = match rest.split_once(" because ") {
                Some((rules, reason)) => (rules, reason.trim()),
                None => (rest, ""),
            };
            Some(Allow {
                rules: rules
                    .split([',', ' '])
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(ToOwned::to_owned)
                    .collect(),
                reason: reason.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::allows;

    #[test]
    fn reads_rules_and_reason() {
        let found = allows(
            "-- groundwork:lint allow ban-drop-column, renaming-table because v2 stopped reading it\n\
             SELECT 1; -- groundwork:lint allow ban-drop-table",
        );
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].rules, ["ban-drop-column", "renaming-table"]);
        assert_eq!(found[0].reason, "v2 stopped reading it");
        assert!(found[0].covers("renaming-table"));
        assert!(!found[1].covers("ban-drop-table"), "no reason, no effect");
    }
}
