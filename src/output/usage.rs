//! What this process used, printed with `GITCA_TIMINGS` (docs/performance.md): resident memory
//! from `/proc/self/status`, CPU time from `getrusage`.

/// Resident memory, in KiB (zero where the kernel does not say).
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub resident: u64,
    /// Anonymous memory: the heap, in practice.
    pub heap: u64,
    /// Mapped files and shared memory (the binary, git's packs).
    pub files: u64,
    /// The peak of `resident` so far (VmHWM).
    pub peak: u64,
}

/// The process's resident memory now.
pub fn memory() -> Memory {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Memory {
        resident: kib("VmRSS:"),
        heap: kib("RssAnon:"),
        files: kib("RssFile:") + kib("RssShmem:"),
        peak: kib("VmHWM:"),
    }
}

/// CPU time of every thread so far, user and system, in microseconds.
pub fn cpu_micros() -> Option<i64> {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into the struct it is given.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let us = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
    Some(us(usage.ru_utime) + us(usage.ru_stime))
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let m = super::memory();
        assert!(m.resident > 0 && m.peak >= m.resident && m.heap <= m.resident);
        assert!(super::cpu_micros().is_some_and(|us| us >= 0));
    }
}
