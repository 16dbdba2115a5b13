"""jobseal: verify and admit job-bound RFC 3820 proxies before a payload runs.

Build one :class:`Verifier` per process and reuse it (it reads the CA
directory and the site policy once, and is safe to share between threads)::

    import jobseal

    verifier = jobseal.Verifier(ca_dir="/etc/grid-security/certificates")
    decision = verifier.admit("job.bundle.pem", ["./analysis.sh", "--events", "1000"])
    if not decision.permitted:
        sys.exit(f"{decision.code}: {decision.message}")

A deny is returned as a :class:`Decision` (``permitted`` false, ``code`` the
reason code of ``spec/jobseal.md`` section 9); only misuse raises
(``TypeError``, ``ValueError``, :class:`ConfigError`).

Submission clients seal jobs with a :class:`Credential` (the user's side)::

    cred = jobseal.Credential()          # as `jobseal sign` finds it
    cred.seal("analysis.sh", ["--events", "1000"], vo="atlas").write("job.bundle.pem")
"""

from ._jobseal import (
    REASON_CODES,
    ConfigError,
    Credential,
    CredentialError,
    Decision,
    JobError,
    PassphraseError,
    PrivateKeyError,
    SealedJob,
    SealError,
    Verifier,
    VomsAttributes,
    __commit__,
    __version__,
)

__all__ = [
    "REASON_CODES",
    "ConfigError",
    "Credential",
    "CredentialError",
    "Decision",
    "JobError",
    "PassphraseError",
    "PrivateKeyError",
    "SealError",
    "SealedJob",
    "Verifier",
    "VomsAttributes",
    "__commit__",
    "__version__",
]
