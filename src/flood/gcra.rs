//! The rate rule: GCRA (generic cell rate algorithm).
//!
//! One number per source, the theoretical arrival time (TAT). A source may
//! send `burst` requests back to back and then one per `interval`
//! (= period / count). Unlike pike's fixed sampling windows there is no
//! window edge: a burst split across a pike window boundary earns no second
//! allowance, because the allowance only comes back at the steady rate.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    /// Nanoseconds between two requests at the sustained rate.
    pub interval_ns: u64,
    /// How far the TAT may run ahead of now: (burst - 1) intervals.
    pub tolerance_ns: u64,
}

impl Gcra {
    pub fn new(count: u64, period_ns: u64, burst: u64) -> Gcra {
        let interval_ns = (period_ns / count.max(1)).max(1);
        Gcra {
            interval_ns,
            tolerance_ns: interval_ns.saturating_mul(burst.max(1) - 1),
        }
    }

    /// Decide one request at `now`: Some(new TAT) if allowed, None if over the rate.
    /// Saturating: extreme but accepted settings (1/3650d with a huge burst)
    /// must not wrap the TAT.
    pub fn admit(&self, tat: u64, now: u64) -> Option<u64> {
        let tat = tat.max(now);
        if tat - now > self.tolerance_ns {
            None
        } else {
            Some(tat.saturating_add(self.interval_ns))
        }
    }

    /// Share of the burst allowance in use at `now`, in percent.
    pub fn load_pct(&self, tat: u64, now: u64) -> u32 {
        let used = tat.saturating_sub(now);
        let full = self.tolerance_ns.saturating_add(self.interval_ns);
        (used.saturating_mul(100) / full.max(1)).min(u32::MAX as u64) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// Feed `n` requests spaced `gap` apart from `start`; count the admitted ones.
    fn admitted(g: &Gcra, tat: &mut u64, start: u64, n: u64, gap: u64) -> u64 {
        (0..n)
            .filter(|i| match g.admit(*tat, start + i * gap) {
                Some(t) => {
                    *tat = t;
                    true
                }
                None => false,
            })
            .count() as u64
    }

    #[test]
    fn burst_then_limit() {
        let g = Gcra::new(30, 2 * S, 30);
        let mut tat = 0;
        assert_eq!(admitted(&g, &mut tat, 10 * S, 100, 0), 30);
    }

    #[test]
    fn steady_rate_at_the_limit_is_never_refused() {
        let g = Gcra::new(30, 2 * S, 30);
        let mut tat = 0;
        // 15/s for 60 s, exactly the configured rate.
        assert_eq!(admitted(&g, &mut tat, 10 * S, 900, 2 * S / 30), 900);
    }

    #[test]
    fn burst_straddling_a_window_edge_gets_no_double_allowance() {
        // pike with 30 per 2 s windows lets 30 through just before an edge and
        // 30 more just after it. GCRA sees one burst of 60 in 100 ms.
        let g = Gcra::new(30, 2 * S, 30);
        let mut tat = 0;
        let first = admitted(&g, &mut tat, 11 * S + 950_000_000, 30, 1_000_000);
        let second = admitted(&g, &mut tat, 12 * S, 30, 1_000_000);
        assert_eq!(first, 30);
        assert!(second <= 2, "second half admitted {second}");
    }

    #[test]
    fn allowance_returns_at_the_sustained_rate() {
        let g = Gcra::new(30, 2 * S, 30);
        let mut tat = 0;
        assert_eq!(admitted(&g, &mut tat, 10 * S, 30, 0), 30);
        // After 1 s, 15 intervals have passed: 15 more.
        assert_eq!(admitted(&g, &mut tat, 11 * S, 30, 0), 15);
        // After a full idle period the whole burst is back.
        assert_eq!(admitted(&g, &mut tat, 20 * S, 40, 0), 30);
    }

    #[test]
    fn smaller_burst_than_rate() {
        let g = Gcra::new(30, 2 * S, 5);
        let mut tat = 0;
        assert_eq!(admitted(&g, &mut tat, 10 * S, 10, 0), 5);
    }

    #[test]
    fn extreme_settings_do_not_wrap() {
        let g = Gcra::new(1, 3650 * 86_400 * S, 1_000_000);
        let mut tat = 0;
        // Near the end of the clock's range, still limiting.
        let start = u64::MAX - 10 * S;
        assert_eq!(admitted(&g, &mut tat, start, 200, 0), 200);
        assert!(g.admit(tat, start).is_some() || tat == u64::MAX);
        assert!(g.load_pct(tat, start) <= 100);
    }

    #[test]
    fn load_reports_used_share() {
        let g = Gcra::new(10, 10 * S, 10);
        assert_eq!(g.load_pct(0, 5 * S), 0);
        assert_eq!(g.load_pct(10 * S, 5 * S), 50);
    }
}
