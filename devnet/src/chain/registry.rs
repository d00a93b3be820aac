//! Model names and versions: a name belongs to the account that first deployed it; a new
//! deployment under a taken name must come from that owner with a higher version (semver), or
//! be an existing version's other input-visibility variant (public or hashed inputs). Old versions
//! stay deployed and callable. `NAME@VERSION` and `NAME@latest` resolve to a model id.

use std::cmp::Ordering;

use lightchain_aivm::circuit::Visibility;

use super::Address;
use super::error::TxError;
use super::state::{ModelRecord, ProvingMode, State};

/// A version as `MAJOR.MINOR.PATCH[-PRE]`: numbers compared as numbers, a pre-release below
/// its release. `None` for anything else.
pub fn parse_version(v: &str) -> Option<(u64, u64, u64, Option<&str>)> {
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) if !p.is_empty() => (c, Some(p)),
        Some(_) => return None,
        None => (v, None),
    };
    let mut it = core.split('.').map(|n| {
        let digits = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        // No leading zeros: `01.2.0` is not a version (and would equal `1.2.0`).
        (digits && (n == "0" || !n.starts_with('0')))
            .then(|| n.parse::<u64>().ok())
            .flatten()
    });
    let pre_ok = pre.is_none_or(|p| {
        p.split('.')
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    });
    if !pre_ok {
        return None;
    }
    let (a, b, c) = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some((a, b, c, pre))
}

/// Semver's pre-release order: dot-separated identifiers, numeric ones numerically and below
/// alphanumeric ones, a shorter list below a longer one it begins.
fn compare_pre(p: &str, q: &str) -> Ordering {
    let num = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    for (a, b) in p.split('.').zip(q.split('.')) {
        let o = match (num(a), num(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => a.cmp(b),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    p.split('.').count().cmp(&q.split('.').count())
}

/// Compares two versions (unparseable ones below every parseable one, then as text).
pub fn compare_versions(x: &str, y: &str) -> Ordering {
    match (parse_version(x), parse_version(y)) {
        (Some((a1, b1, c1, p1)), Some((a2, b2, c2, p2))) => {
            (a1, b1, c1).cmp(&(a2, b2, c2)).then(match (p1, p2) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(p), Some(q)) => compare_pre(p, q),
            })
        }
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => x.cmp(y),
    }
}

/// The deployments of a name, oldest first.
pub fn versions<'a>(state: &'a State, name: &str) -> Vec<&'a ModelRecord> {
    let mut v: Vec<&ModelRecord> = state.models.values().filter(|m| m.name == name).collect();
    v.sort_by(|a, b| a.height.cmp(&b.height).then(a.model_id.cmp(&b.model_id)));
    v
}

/// The account a name belongs to: its first deployer.
pub fn owner(state: &State, name: &str) -> Option<Address> {
    versions(state, name).first().map(|m| m.deployer)
}

/// Whether `from` may deploy `program` as `name` `version` with inputs of `visibility`, in
/// proving `mode`.
pub fn check_deploy(
    state: &State,
    from: &Address,
    (name, version): (&str, &str),
    program: &str,
    (visibility, mode): (Visibility, ProvingMode),
) -> Result<(), TxError> {
    if parse_version(version).is_none() {
        return Err(TxError::BadVersion(version.to_string()));
    }
    let existing = versions(state, name);
    let Some(first) = existing.first() else {
        return Ok(());
    };
    if &first.deployer != from {
        return Err(TxError::NameTaken {
            name: name.to_string(),
            owner: first.deployer,
        });
    }
    // A deployed version's variant with another input visibility or proving mode: the same
    // program.
    let same = existing.iter().filter(|m| m.version == version);
    if same.clone().count() > 0
        && same
            .clone()
            .all(|m| (m.input_visibility, m.mode) != (visibility, mode) && m.program_id == program)
    {
        return Ok(());
    }
    let latest = existing
        .iter()
        .map(|m| m.version.as_str())
        .max_by(|a, b| compare_versions(a, b))
        .unwrap_or_default();
    if compare_versions(version, latest) != Ordering::Greater {
        return Err(TxError::VersionNotNewer {
            name: name.to_string(),
            version: version.to_string(),
            latest: latest.to_string(),
        });
    }
    Ok(())
}

/// Resolves a model id, `NAME@VERSION` or `NAME@latest` (the highest version; of its
/// deployments, the latest one).
pub fn resolve<'a>(state: &'a State, reference: &str) -> Option<&'a ModelRecord> {
    let Some((name, version)) = reference.split_once('@') else {
        return state.models.get(reference);
    };
    let all = versions(state, name);
    if version == "latest" {
        // Among equal maxima `max_by` keeps the last: the latest deployed. A version waiting
        // for the validators' approval is not live yet.
        all.into_iter()
            .filter(|m| !m.pending_approval)
            .max_by(|a, b| compare_versions(&a.version, &b.version))
    } else {
        all.into_iter().rev().find(|m| m.version == version)
    }
}

/// A validator's approval (`from` is its account) of a version waiting for approval; the
/// version goes live once validators holding more than 2/3 of the stake approved it.
pub fn approve(state: &mut State, from: &Address, model_id: &str) -> Result<(), TxError> {
    let v = state
        .validators
        .iter()
        .position(|v| &v.account == from)
        .ok_or(TxError::NotAValidator)?;
    let total: u128 = state.validators.iter().map(|v| v.stake).sum();
    let m = state
        .models
        .get(model_id)
        .ok_or_else(|| TxError::UnknownModel(model_id.to_string()))?;
    if !m.pending_approval {
        return Err(TxError::NotPendingApproval(model_id.to_string()));
    }
    if m.approvals.contains(&v) {
        return Err(TxError::ApprovedAlready(v));
    }
    let mut approvals = m.approvals.clone();
    approvals.push(v);
    approvals.sort_unstable();
    let approved: u128 = approvals.iter().map(|&i| state.validators[i].stake).sum();
    let m = state.models.get_mut(model_id).expect("checked above");
    m.approvals = approvals;
    m.pending_approval = approved * 3 <= total * 2;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_semver() {
        assert_eq!(compare_versions("0.10.0", "0.9.9"), Ordering::Greater);
        assert_eq!(compare_versions("1.0.0", "1.0.0-rc1"), Ordering::Greater);
        assert_eq!(
            compare_versions("1.0.0-rc2", "1.0.0-rc1"),
            Ordering::Greater
        );
        assert_eq!(compare_versions("0.2.0", "0.2.0"), Ordering::Equal);
        assert_eq!(
            compare_versions("1.0.0-rc.10", "1.0.0-rc.9"),
            Ordering::Greater
        );
        assert_eq!(
            compare_versions("1.0.0-alpha", "1.0.0-alpha.1"),
            Ordering::Less
        );
        assert_eq!(compare_versions("1.0.0-1", "1.0.0-alpha"), Ordering::Less);
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "a.b.c",
            "1.2.3-",
            "01x.2.3",
            "1..3",
            "01.2.0",
            "1.2.3-a..b",
            "1.2.3-ä",
        ] {
            assert!(parse_version(bad).is_none(), "{bad}");
        }
        assert_eq!(parse_version("1.2.3-beta"), Some((1, 2, 3, Some("beta"))));
    }
}
