//! Per-operator rate limiting: a token bucket per operator, so one operator's flood never
//! throttles another. The buckets live in this process: behind N replicas an operator gets
//! up to N times the rate (the gateway's own limits are the global cap).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use ledger::OperatorId;

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<OperatorId, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token; `Err(seconds)` says when the next one is there.
    pub fn check(&self, operator: &OperatorId) -> Result<(), u64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        let (tokens, at) = buckets.entry(operator.clone()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_operator_cannot_use_up_another_operators_tokens() {
        let limiter = RateLimiter::new(1, 3);
        let a = OperatorId::parse("OPA").unwrap();
        let b = OperatorId::parse("OPB").unwrap();
        for _ in 0..3 {
            assert!(limiter.check(&a).is_ok());
        }
        assert_eq!(limiter.check(&a), Err(1));
        assert!(limiter.check(&b).is_ok());
    }
}
