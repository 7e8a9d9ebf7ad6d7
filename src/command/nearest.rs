//! "Did you mean …?": the closest candidate by edit distance.

/// The candidate closest to `word` (ASCII case-insensitive), if it is close
/// enough to be a plausible typo: distance 1 for short words, 2 otherwise.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if word.len() > 64 {
        return None;
    }
    let word = word.to_ascii_lowercase();
    let limit = if word.chars().count() <= 4 { 1 } else { 2 };
    let candidates: Vec<&str> = candidates.into_iter().collect();
    // A clear shared start (`stage` for `staging`) is as good a hint as a typo.
    let prefixed = |c: &&&str| {
        let c = c.to_ascii_lowercase();
        let shared = c
            .bytes()
            .zip(word.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        (word.len() >= 3 && c.starts_with(&word)) || shared >= 4
    };
    if let Some(c) = candidates.iter().find(prefixed) {
        return Some(c);
    }
    candidates
        .into_iter()
        .map(|c| (distance(&word, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance with adjacent transpositions counted as one edit.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos() {
        let commands = ["deploy", "promote", "rollback", "lock", "unlock", "envs"];
        assert_eq!(nearest("deplyo", commands), Some("deploy"));
        assert_eq!(nearest("DEPLOY", commands), Some("deploy"));
        assert_eq!(nearest("rolback", commands), Some("rollback"));
        assert_eq!(nearest("lokc", commands), Some("lock"));
        assert_eq!(nearest("env", commands), Some("envs"));
        assert_eq!(nearest("frobnicate", commands), None);
        assert_eq!(
            nearest("stagin", ["dev", "staging", "prod"]),
            Some("staging")
        );
        assert_eq!(
            nearest("stage", ["dev", "staging", "prod"]),
            Some("staging")
        );
        assert_eq!(nearest("st", ["dev", "staging", "prod"]), None);
    }
}
