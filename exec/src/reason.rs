//! The launcher's own reason codes (`spec/jobseal.md` §14.11): one enum,
//! so that every `exec.*` code is spelled once and the spec's registry is
//! checked against it. Admission denies pass their §9 code through.

macro_rules! exec_reasons {
    ($( $(#[$doc:meta])* $variant:ident => $code:literal, )*) => {
        /// Why the launcher refused before, around or after admission.
        #[non_exhaustive]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ExecReason {
            $( $(#[$doc])* $variant, )*
        }

        impl ExecReason {
            /// Every code, in the order of §14.11.
            pub const ALL: &'static [ExecReason] = &[ $( ExecReason::$variant, )* ];

            /// The stable dotted code.
            pub const fn code(self) -> &'static str {
                match self { $( ExecReason::$variant => $code, )* }
            }
        }
    };
}

exec_reasons! {
    /// No COMMAND, or an option.
    Usage => "exec.usage",
    /// `GLEXEC_CLIENT_CERT` unset or not a usable file.
    Credential => "exec.credential",
    /// The caller is not a whitelisted pilot account.
    CallerNotAllowed => "exec.caller-not-allowed",
    /// Inherited descriptors or a terminal (setuid identity switching).
    /// Retired with the setuid mode: no launcher of this version gives it;
    /// kept so that the code is never reused.
    Descriptor => "exec.descriptor",
    /// COMMAND cannot be found, read or executed.
    NotExecutable => "exec.not-executable",
    /// The verified identity maps to no account.
    NoMapping => "exec.no-mapping",
    /// The mapped account does not exist.
    NoAccount => "exec.no-account",
    /// The target uid is 0 or below `min_uid`.
    TargetUid => "exec.target-uid",
    /// The target gid is 0 or below `min_gid`.
    TargetGid => "exec.target-gid",
    /// The original executable may be changed by others (setuid mode).
    /// Retired with the setuid mode (the client seals the bytes it reads
    /// with the pilot's rights); kept so that the code is never reused.
    PayloadUntrusted => "exec.payload-untrusted",
    /// The working directory or an input copy.
    Workdir => "exec.workdir",
    /// The source or target proxy.
    Proxy => "exec.proxy",
    /// A launch request that breaks the protocol (§14.14).
    Request => "exec.request",
    /// The executable's memfd is not sealed for good.
    PayloadUnsealed => "exec.payload-unsealed",
    /// The launch service cannot be reached or ended the launch.
    ServiceUnavailable => "exec.service-unavailable",
    /// The launch service has too many requests in progress.
    ServiceBusy => "exec.service-busy",
    /// The caller had too many recorded refusals in the last minute.
    CallerThrottled => "exec.caller-throttled",
    /// The client disconnected while its payload ran; the payload was killed.
    ClientGone => "exec.client-gone",
    /// The payload could not join the caller's cgroup.
    Cgroup => "exec.cgroup",
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_spec_registry_lists_exactly_these_codes() {
        let spec = include_str!("../../spec/jobseal.md");
        let registry = spec
            .split("\n### 14.11 ")
            .nth(1)
            .and_then(|s| s.split("\n### ").next())
            .unwrap();
        let listed: BTreeSet<&str> = registry
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .collect();
        let ours: BTreeSet<&str> = ExecReason::ALL.iter().map(|r| r.code()).collect();
        assert_eq!(listed, ours, "spec §14.11 and ExecReason differ");
    }

    #[test]
    fn no_code_is_spelled_outside_this_module() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut stack = vec![std::path::PathBuf::from(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.file_name().unwrap() != "reason.rs" {
                    let text = std::fs::read_to_string(&p).unwrap();
                    for quoted in ["\"exec.", "\"internal.error\"", "\"config.invalid\""] {
                        assert!(!text.contains(quoted), "{} spells {quoted}", p.display());
                    }
                }
            }
        }
    }
}
