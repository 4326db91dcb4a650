//! `nextToken` for list operations: an opaque, URL-safe token naming the
//! last item of the previous page. Tokens carry the operation they belong
//! to, so one operation's token is refused by another.

use crate::error::{EcsError, EcsResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn encode(operation: &str, last: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{operation}\n{last}"))
}

/// The `last` item a token names, or InvalidParameterException.
pub fn decode(operation: &str, token: &str) -> EcsResult<String> {
    let bad = || EcsError::invalid("Invalid nextToken.");
    let bytes = URL_SAFE_NO_PAD.decode(token.as_bytes()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (op, last) = text.split_once('\n').ok_or_else(bad)?;
    if op != operation {
        return Err(bad());
    }
    Ok(last.to_string())
}

/// Split an already ordered list into one page after the token's item.
/// `key` gives each item's position key (strictly increasing in `items`).
pub fn page<T>(
    operation: &str,
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    next_token: Option<&str>,
    limit: usize,
) -> EcsResult<(Vec<T>, Option<String>)> {
    let start = match next_token {
        None => 0,
        Some(t) => {
            let after = decode(operation, t)?;
            items.iter().position(|i| key(i) == after).map(|p| p + 1).unwrap_or_else(|| {
                // The item was deleted since: resume at the first item past it.
                items.iter().position(|i| key(i) > after).unwrap_or(items.len())
            })
        }
    };
    let rest: Vec<T> = items.into_iter().skip(start).collect();
    let more = rest.len() > limit;
    let page: Vec<T> = rest.into_iter().take(limit).collect();
    let token = if more { page.last().map(|l| encode(operation, &key(l))) } else { None };
    Ok((page, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_and_is_bound_to_operation() {
        let t = encode("ListClusters", "ecs/a");
        assert_eq!(decode("ListClusters", &t).unwrap(), "ecs/a");
        assert!(decode("ListTaskDefinitions", &t).is_err());
        assert!(decode("ListClusters", "!!!").is_err());
    }

    #[test]
    fn pages_cover_everything_once() {
        let items: Vec<String> = (0..25).map(|i| format!("k{i:03}")).collect();
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let (page, next) = page("Op", items.clone(), |s| s.clone(), token.as_deref(), 10).unwrap();
            seen.extend(page);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, items);
    }
}
