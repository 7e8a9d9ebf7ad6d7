//! Which approvals count for which of a request's rules. Pure.
//!
//! With `one_rule_per_person` an approval counts for one rule only: the
//! first rule still short that the person qualifies for. When every rule
//! they qualify for is full, an earlier approver who qualifies for another
//! rule still short moves there to make room (an augmenting path, as in a
//! bipartite matching), so the order people approve in never strands a
//! request that some set of them could clear. Without it, an approval
//! counts for every rule the person qualifies for.

use serde::{Deserialize, Serialize};

use super::ApprovalRule;
use crate::names::{PersonId, RoleName, RuleName};

/// One rule of a request, fixed when the request is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleNeed {
    /// The rule's name.
    pub name: RuleName,
    /// Roles whose holders may approve for it.
    pub roles: Vec<RoleName>,
    /// Distinct people it needs.
    pub count: u32,
}

impl RuleNeed {
    /// Whether someone holding `roles` may approve for this rule.
    pub fn admits(&self, roles: &[RoleName]) -> bool {
        roles.iter().any(|r| self.roles.contains(r))
    }
}

/// How one rule stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleStanding {
    /// The rule's name.
    pub name: RuleName,
    /// People it needs.
    pub count: u32,
    /// People whose approval counts for it, in the order they approved.
    pub people: Vec<PersonId>,
}

/// How every rule of a request stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tally {
    /// The rules, in config order.
    pub rules: Vec<RuleStanding>,
}

impl Tally {
    /// Whether every rule is met.
    pub fn met(&self) -> bool {
        self.rules
            .iter()
            .all(|r| r.people.len() >= r.count as usize)
    }

    /// Whether `person`'s approval counts for some rule.
    pub fn counts(&self, person: &PersonId) -> bool {
        self.rules.iter().any(|r| r.people.contains(person))
    }

    /// The rules `person`'s approval counts for.
    pub fn rules_of(&self, person: &PersonId) -> Vec<&RuleName> {
        self.rules
            .iter()
            .filter(|r| r.people.contains(person))
            .map(|r| &r.name)
            .collect()
    }

    /// Approvals that count, each person once.
    pub fn people(&self) -> usize {
        let mut all: Vec<&PersonId> = self.rules.iter().flat_map(|r| &r.people).collect();
        all.sort();
        all.dedup();
        all.len()
    }

    /// One line per request: `qa 1/1 carol · release 0/1`.
    pub fn summary(&self) -> String {
        let rules: Vec<String> = self
            .rules
            .iter()
            .map(|r| {
                let mut text = format!("{} {}/{}", r.name, r.people.len(), r.count);
                if !r.people.is_empty() {
                    let names: Vec<&str> = r.people.iter().map(PersonId::as_str).collect();
                    text.push(' ');
                    text.push_str(&names.join(", "));
                }
                text
            })
            .collect();
        rules.join(" · ")
    }
}

/// Counts `approvers` (person and the roles that count for them, in the
/// order they approved, each person once) against `rule`.
pub fn tally(rule: &ApprovalRule, approvers: &[(PersonId, Vec<RoleName>)]) -> Tally {
    let mut owners: Vec<Vec<usize>> = vec![Vec::new(); rule.rules.len()];
    for (i, (_, roles)) in approvers.iter().enumerate() {
        if rule.one_rule_per_person {
            let mut seen = vec![false; rule.rules.len()];
            place(i, rule, approvers, &mut owners, &mut seen);
        } else {
            for (r, need) in rule.rules.iter().enumerate() {
                if need.admits(roles) && owners[r].len() < need.count as usize {
                    owners[r].push(i);
                }
            }
        }
    }
    Tally {
        rules: rule
            .rules
            .iter()
            .zip(owners)
            .map(|(need, mut owners)| {
                owners.sort_unstable();
                RuleStanding {
                    name: need.name.clone(),
                    count: need.count,
                    people: owners.iter().map(|&i| approvers[i].0.clone()).collect(),
                }
            })
            .collect(),
    }
}

/// Finds approver `i` a place: the first rule with room they qualify for,
/// else one made by moving an earlier approver on. False when none exists.
fn place(
    i: usize,
    rule: &ApprovalRule,
    approvers: &[(PersonId, Vec<RoleName>)],
    owners: &mut [Vec<usize>],
    seen: &mut [bool],
) -> bool {
    let roles = &approvers[i].1;
    let fits = |r: usize, seen: &[bool]| !seen[r] && rule.rules[r].admits(roles);
    let room = (0..rule.rules.len())
        .find(|&r| fits(r, seen) && owners[r].len() < rule.rules[r].count as usize);
    if let Some(r) = room {
        owners[r].push(i);
        return true;
    }
    for r in 0..rule.rules.len() {
        if !fits(r, seen) {
            continue;
        }
        seen[r] = true;
        for k in 0..owners[r].len() {
            let other = owners[r][k];
            if place(other, rule, approvers, owners, seen) {
                owners[r][k] = i;
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> RoleName {
        RoleName::new(name).unwrap()
    }

    fn need(name: &str, roles: &[&str], count: u32) -> RuleNeed {
        RuleNeed {
            name: RuleName::new(name).unwrap(),
            roles: roles.iter().map(|r| role(r)).collect(),
            count,
        }
    }

    fn rule(rules: Vec<RuleNeed>, one_rule_per_person: bool) -> ApprovalRule {
        ApprovalRule {
            rules,
            one_rule_per_person,
            self_approval: false,
            expires_at: 3600,
        }
    }

    fn by(people: &[(&str, &[&str])]) -> Vec<(PersonId, Vec<RoleName>)> {
        people
            .iter()
            .map(|(p, roles)| {
                (
                    PersonId::new(p).unwrap(),
                    roles.iter().map(|r| role(r)).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn an_approval_counts_for_the_first_rule_still_short() {
        let r = rule(
            vec![need("qa", &["qa"], 1), need("release", &["qa", "rm"], 1)],
            true,
        );
        let t = tally(&r, &by(&[("carol", &["qa"])]));
        assert_eq!(t.summary(), "qa 1/1 carol · release 0/1");
        assert!(!t.met());
        let t = tally(&r, &by(&[("carol", &["qa"]), ("dave", &["qa"])]));
        assert_eq!(t.summary(), "qa 1/1 carol · release 1/1 dave");
        assert!(t.met());
    }

    #[test]
    fn an_earlier_approver_moves_on_to_make_room() {
        // carol could count for either; dave only for qa.
        let r = rule(
            vec![need("qa", &["qa"], 1), need("release", &["rm"], 1)],
            true,
        );
        let t = tally(&r, &by(&[("carol", &["qa", "rm"]), ("dave", &["qa"])]));
        assert_eq!(t.summary(), "qa 1/1 dave · release 1/1 carol");
        assert!(t.met());
    }

    #[test]
    fn an_approval_with_no_place_left_does_not_count() {
        let r = rule(
            vec![need("qa", &["qa"], 1), need("release", &["rm"], 1)],
            true,
        );
        let t = tally(&r, &by(&[("carol", &["qa"]), ("dave", &["qa"])]));
        assert!(!t.counts(&PersonId::new("dave").unwrap()));
        assert_eq!(t.summary(), "qa 1/1 carol · release 0/1");
    }

    #[test]
    fn without_one_rule_per_person_one_approval_meets_every_rule_it_fits() {
        let r = rule(
            vec![need("qa", &["qa"], 1), need("release", &["qa"], 1)],
            false,
        );
        let t = tally(&r, &by(&[("carol", &["qa"])]));
        assert_eq!(t.summary(), "qa 1/1 carol · release 1/1 carol");
        assert!(t.met());
        assert_eq!(t.people(), 1);
    }
}
