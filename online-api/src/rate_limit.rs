//! Per-operator rate limiting: a token bucket per operator, so one operator's flood never
//! throttles another. The buckets live in this process: behind N replicas an operator gets
//! up to N times the rate (the gateway's own limits are the global cap).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use ledger::OperatorId;

pub struct RateLimiter {
    per_second: u64,
    /// Bucket capacity in micro-tokens (a request costs one million).
    capacity: u64,
    buckets: Mutex<HashMap<OperatorId, (u64, Instant)>>,
}

/// One token, in micro-tokens: integer arithmetic keeps the bucket exact.
const TOKEN: u64 = 1_000_000;

impl RateLimiter {
    pub fn new(per_second: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            per_second: u64::from(per_second.max(1)),
            capacity: u64::from(burst.max(1)) * TOKEN,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token; `Err(seconds)` says when the next one is there.
    pub fn check(&self, operator: &OperatorId) -> Result<(), u64> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        let (tokens, at) = buckets
            .entry(operator.clone())
            .or_insert((self.capacity, now));
        // A micro-token per microsecond per request-per-second of rate.
        let refill = (now.duration_since(*at).as_micros() as u64).saturating_mul(self.per_second);
        *tokens = tokens.saturating_add(refill).min(self.capacity);
        *at = now;
        if *tokens >= TOKEN {
            *tokens -= TOKEN;
            Ok(())
        } else {
            let missing = TOKEN - *tokens;
            Err(missing.div_ceil(self.per_second * TOKEN).max(1))
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
