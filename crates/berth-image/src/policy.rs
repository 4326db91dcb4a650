//! When to contact the registry: the ECS agent's `ECS_IMAGE_PULL_BEHAVIOR`.

use std::fmt;
use std::str::FromStr;

use crate::store::ImageSource;

/// ECS agent image pull behaviours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PullPolicy {
    /// Pull; if the pull fails, use the cached image when there is one.
    #[default]
    Default,
    /// Pull; if the pull fails, the task fails.
    Always,
    /// Pull only if this agent has not pulled the image before.
    Once,
    /// Use any cached image (pulled or loaded); pull only when absent.
    PreferCached,
}

/// What to do for one image given what the cache holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullDecision {
    UseCache,
    Pull { fall_back_to_cache: bool },
}

impl PullPolicy {
    /// `cached` is where the cached copy came from, if there is one.
    pub fn decide(self, cached: Option<ImageSource>) -> PullDecision {
        match (self, cached) {
            (PullPolicy::Default, cached) => PullDecision::Pull {
                fall_back_to_cache: cached.is_some(),
            },
            (PullPolicy::Always, _) => PullDecision::Pull {
                fall_back_to_cache: false,
            },
            // "Pulled by this agent before": an image brought in by
            // `berth image load` was not, so it is pulled once anyway.
            (PullPolicy::Once, Some(ImageSource::Pulled)) => PullDecision::UseCache,
            (PullPolicy::Once, _) => PullDecision::Pull {
                fall_back_to_cache: false,
            },
            (PullPolicy::PreferCached, Some(_)) => PullDecision::UseCache,
            (PullPolicy::PreferCached, None) => PullDecision::Pull {
                fall_back_to_cache: false,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image pull behavior {0:?}: expected default, always, once or prefer-cached")]
pub struct InvalidPullPolicy(pub String);

impl FromStr for PullPolicy {
    type Err = InvalidPullPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "default" | "" => Ok(PullPolicy::Default),
            "always" => Ok(PullPolicy::Always),
            "once" => Ok(PullPolicy::Once),
            "prefer-cached" => Ok(PullPolicy::PreferCached),
            _ => Err(InvalidPullPolicy(s.to_owned())),
        }
    }
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PullPolicy::Default => "default",
            PullPolicy::Always => "always",
            PullPolicy::Once => "once",
            PullPolicy::PreferCached => "prefer-cached",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PullDecision::*;

    #[test]
    fn decision_table() {
        let pulled = Some(ImageSource::Pulled);
        let loaded = Some(ImageSource::Loaded);
        assert_eq!(
            PullPolicy::Default.decide(None),
            Pull {
                fall_back_to_cache: false
            }
        );
        assert_eq!(
            PullPolicy::Default.decide(pulled),
            Pull {
                fall_back_to_cache: true
            }
        );
        assert_eq!(
            PullPolicy::Default.decide(loaded),
            Pull {
                fall_back_to_cache: true
            }
        );
        assert_eq!(
            PullPolicy::Always.decide(None),
            Pull {
                fall_back_to_cache: false
            }
        );
        assert_eq!(
            PullPolicy::Always.decide(pulled),
            Pull {
                fall_back_to_cache: false
            }
        );
        assert_eq!(
            PullPolicy::Once.decide(None),
            Pull {
                fall_back_to_cache: false
            }
        );
        assert_eq!(PullPolicy::Once.decide(pulled), UseCache);
        assert_eq!(
            PullPolicy::Once.decide(loaded),
            Pull {
                fall_back_to_cache: false
            }
        );
        assert_eq!(
            PullPolicy::PreferCached.decide(None),
            Pull {
                fall_back_to_cache: false
            }
        );
        assert_eq!(PullPolicy::PreferCached.decide(pulled), UseCache);
        assert_eq!(PullPolicy::PreferCached.decide(loaded), UseCache);
    }

    #[test]
    fn parses_agent_values() {
        for p in [
            PullPolicy::Default,
            PullPolicy::Always,
            PullPolicy::Once,
            PullPolicy::PreferCached,
        ] {
            assert_eq!(p.to_string().parse::<PullPolicy>().unwrap(), p);
        }
        assert!("sometimes".parse::<PullPolicy>().is_err());
    }
}
