"""Type stubs of the jobseal extension module (jobseal._jobseal)."""

import datetime
import os
import pathlib
from typing import (
    Callable,
    Dict,
    Final,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
    final,
)

__version__: Final[str]
#: The git commit the wheel was built from (40 hex digits), or ``"unknown"``.
__commit__: Final[str]
#: Every reason code a deny can carry (``spec/jobseal.md`` section 9), in
#: the order of the checks. A code not listed here MUST be treated as a deny.
REASON_CODES: Final[Tuple[str, ...]]

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

_StrPath = Union[str, "os.PathLike[str]"]
#: argv words and job_dir: ``bytes`` too, for names that are not UTF-8.
_Path = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
#: The bundle: its bytes (PEM), or the path of its file (``str`` or
#: ``os.PathLike``). ``bytes`` are always the bundle itself, never a path.
_Bundle = Union[bytes, bytearray, _StrPath]
#: ``None`` (now), Unix seconds, an aware ``datetime``, or RFC 3339 text.
_When = Union[None, int, float, datetime.datetime, str]

class ConfigError(ValueError):
    """The verifier cannot be built (unusable CA directory or site policy)."""

    #: ``"config.invalid"`` or ``"policy.invalid"``.
    code: str

@final
class VomsAttributes:
    """One VOMS attribute certificate of the chain."""

    @property
    def vo(self) -> str: ...
    @property
    def fqans(self) -> List[str]:
        """Primary first; empty unless ``verified``."""
    @property
    def generic_attributes(self) -> List[Tuple[str, str, str]]:
        """``(name, value, qualifier)``; empty unless ``verified``."""
    @property
    def issuer(self) -> str: ...
    @property
    def verified(self) -> bool: ...
    @property
    def error(self) -> Optional[str]:
        """The ``voms.*`` code of an untrusted AC; ``None`` if verified."""
    @property
    def error_message(self) -> Optional[str]: ...

@final
class Decision:
    """Permit or deny (immutable). ``bool(decision)`` is ``decision.permitted``."""

    @property
    def permitted(self) -> bool: ...
    @property
    def code(self) -> str:
        """``"permit"``, or the reason code of the deny."""
    @property
    def message(self) -> str:
        """One line for people; only ``code`` is stable."""
    @property
    def dn(self) -> Optional[str]:
        """The user (end-entity subject), if path validation got that far."""
    @property
    def issuer(self) -> Optional[str]:
        """The job-bound proxy's issuer: the user's certificate or a proxy of it."""
    @property
    def issued_by_end_entity(self) -> Optional[bool]:
        """Whether the user's certificate issued the job-bound proxy directly
        (no proxy sealed the job; what site policy ``issuer = "end-entity"``
        requires); ``None`` if path validation did not get that far."""
    @property
    def ca(self) -> Optional[str]:
        """The trust anchor's subject."""
    @property
    def fqans(self) -> List[str]:
        """The FQANs of every verified VOMS AC, in chain order."""
    @property
    def voms(self) -> List[VomsAttributes]:
        """Every VOMS AC examined, verified or not."""
    @property
    def vo(self) -> Optional[str]:
        """The VO the manifest names (a claim; ``fqans`` proves a VO)."""
    @property
    def job_id(self) -> Optional[str]:
        """32 lowercase hex digits, if the manifest was verified."""
    @property
    def manifest_sha256(self) -> Optional[str]:
        """64 lowercase hex digits, if the binding was checked."""
    def __bool__(self) -> bool: ...

@final
class Verifier:
    """Verifies and admits jobs; build once, share between threads.

    No setting comes from the environment: ``ca_dir`` defaults to
    /etc/grid-security/certificates, ``voms_dir`` to
    /etc/grid-security/vomsdir, ``policy`` to /etc/jobseal/policy.toml if it
    exists, else the built-in policy (:meth:`from_env` reads
    ``$X509_CERT_DIR``, ``$X509_VOMS_DIR`` and ``$JOBSEAL_POLICY``). Paths
    are made absolute when the verifier is built. ``state_dir`` (replay
    database and audit log, used by :meth:`admit` only) defaults as for
    ``jobseal admit``: /var/lib/jobseal and /var/log/jobseal as root, else
    ``$XDG_STATE_HOME/jobseal`` or ``~/.local/state/jobseal``, read once,
    here. Raises :class:`ConfigError` if the CA directory or the policy is
    unusable.
    """

    def __new__(
        cls,
        ca_dir: Optional[_StrPath] = None,
        voms_dir: Optional[_StrPath] = None,
        policy: Optional[_StrPath] = None,
        *,
        state_dir: Optional[_StrPath] = None,
    ) -> "Verifier": ...
    @classmethod
    def from_env(
        cls,
        ca_dir: Optional[_StrPath] = None,
        voms_dir: Optional[_StrPath] = None,
        policy: Optional[_StrPath] = None,
        *,
        state_dir: Optional[_StrPath] = None,
    ) -> "Verifier":
        """As ``Verifier(...)``, with ``$X509_CERT_DIR``, ``$X509_VOMS_DIR``
        and ``$JOBSEAL_POLICY`` for what is not given. Raises
        :class:`ConfigError` in a setuid or setgid process."""
    def verify(
        self,
        bundle: _Bundle,
        argv: Union[List[_Path], Tuple[_Path, ...]],
        *,
        job_dir: Optional[_Path] = None,
        at: _When = None,
    ) -> Decision:
        """Steps 1-6 at ``at`` (default now); records nothing.

        ``argv[0]`` is the executable about to run, ``argv[1:]`` its
        arguments (as for execve); inputs are looked up in ``job_dir``
        (default: the current directory).
        """
    def check_credential(self, bundle: _Bundle, *, at: _When = None) -> Decision:
        """Steps 1-4 and 6: the credential only, not the payload."""
    def admit(
        self,
        bundle: _Bundle,
        argv: Union[List[_Path], Tuple[_Path, ...]],
        *,
        job_dir: Optional[_Path] = None,
    ) -> Decision:
        """Steps 1-6 now, then count the job's use and write the audit record.

        In a child after ``fork``, a verifier whose admission the parent
        opened denies (``internal.error``): build a new one in the child.
        """
    @property
    def ca_dir(self) -> pathlib.Path: ...
    @property
    def voms_dir(self) -> pathlib.Path: ...
    @property
    def policy(self) -> Optional[pathlib.Path]:
        """The policy file read; ``None`` for the built-in policy."""

# --- sealing (the user's side) -----------------------------------------------

class SealError(Exception):
    """A job could not be sealed; the text is ``jobseal sign``'s message."""

class CredentialError(SealError):
    """No credential, or one that cannot sign (expired, limited, refused by sites)."""

class PrivateKeyError(SealError):
    """The private key cannot be read or used (format, size, readable by others)."""

class PassphraseError(SealError):
    """The passphrase does not decrypt the private key."""

class JobError(SealError):
    """Jobs that cannot be sealed; ``problems`` has one line per problem."""

    problems: List[str]

#: A job for :meth:`Credential.seal_many`: a job TOML path, or a dict of
#: :meth:`Credential.seal`'s keyword arguments (with ``executable``).
_Job = Union[_StrPath, Mapping[str, object]]
#: ``"24h"``, ``"2d"``, ``"12:00"`` (HH:MM) or whole seconds.
_Valid = Union[str, int]

@final
class SealedJob:
    """A sealed job: the bundle and what its manifest says (immutable)."""

    @property
    def bundle(self) -> bytes:
        """The bundle (PEM) the pilot hands to the site."""
    @property
    def job_id(self) -> str: ...
    @property
    def manifest_sha256(self) -> str: ...
    @property
    def executable(self) -> str: ...
    @property
    def executable_sha256(self) -> str: ...
    @property
    def arguments(self) -> List[str]: ...
    @property
    def inputs(self) -> List[Tuple[str, int, str]]:
        """``(name, size, sha256)`` of every input."""
    @property
    def environment(self) -> Optional[Dict[str, str]]: ...
    @property
    def vo(self) -> Optional[str]: ...
    @property
    def sites(self) -> Optional[List[str]]: ...
    @property
    def not_before(self) -> int: ...
    @property
    def not_after(self) -> int: ...
    @property
    def allowed_uses(self) -> int: ...
    @property
    def identity(self) -> str: ...
    @property
    def capped(self) -> Optional[str]:
        """Why the validity was cut to the credential's, if it was."""
    @property
    def warnings(self) -> List[str]:
        """What ``force=True`` let through."""
    @property
    def source(self) -> str:
        """The job file, or the job's name."""
    def write(self, path: _StrPath) -> None:
        """Write the bundle atomically (mode 0644)."""

@final
class Credential:
    """The user's credential, loaded once for many jobs.

    Found as ``jobseal sign`` finds it: ``proxy``, or ``cert`` and ``key``
    (``cert`` alone for a .p12), else ``$X509_USER_PROXY``,
    ``$X509_USER_CERT``/``$X509_USER_KEY``, ``/tmp/x509up_u<uid>``,
    ``~/.globus/usercert.pem`` + ``userkey.pem``, ``~/.globus/usercred.p12``.
    ``passphrase``: the passphrase, a callable given the prompt, or ``None``
    to ask with :func:`getpass.getpass` if the key is encrypted.

    ``voms=`` of the sealing methods (``"atlas"``, ``"atlas:/atlas/higgs"``,
    ``"atlas:/atlas/Role=production"``, ...) fetches VOMS attributes from
    the VO's server with this certificate and key (not a proxy), as
    ``jobseal sign --voms`` does, and puts them in every job-bound proxy of
    the call; an AC is reused while it lasts. ``vomses``, ``vomsdir``,
    ``certdir`` and ``voms_timeout`` (seconds per server) are where and how
    it asks (default: ``$VOMS_USERCONF``, ``~/.voms/vomses``,
    ``~/.glite/vomses``, ``/etc/vomses``; ``$X509_VOMS_DIR``;
    ``$X509_CERT_DIR``; 60). A failure raises :class:`CredentialError` with
    the CLI's message; nothing is sealed without the attributes.
    """

    def __new__(
        cls,
        proxy: Optional[_StrPath] = None,
        cert: Optional[_StrPath] = None,
        key: Optional[_StrPath] = None,
        *,
        passphrase: Union[None, str, Callable[[str], str]] = None,
        vomses: Optional[Sequence[_StrPath]] = None,
        vomsdir: Optional[_StrPath] = None,
        certdir: Optional[_StrPath] = None,
        voms_timeout: int = 60,
    ) -> "Credential": ...
    @property
    def identity(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def vos(self) -> List[str]: ...
    @property
    def expires(self) -> int: ...
    def seal(
        self,
        executable: _StrPath,
        arguments: Optional[Sequence[str]] = None,
        *,
        inputs: Optional[Sequence[_StrPath]] = None,
        environment: Optional[Mapping[str, str]] = None,
        vo: Optional[str] = None,
        sites: Optional[Sequence[str]] = None,
        valid: Optional[_Valid] = None,
        allowed_uses: Optional[int] = None,
        base_dir: Optional[_StrPath] = None,
        name: Optional[str] = None,
        force: bool = False,
        voms: Optional[str] = None,
    ) -> SealedJob:
        """Seal one job; paths are relative to ``base_dir`` (default ".")."""
    def seal_file(
        self, path: _StrPath, *, force: bool = False, voms: Optional[str] = None
    ) -> SealedJob:
        """Seal the job of a job TOML file."""
    def seal_many(
        self,
        jobs: Iterable[_Job],
        *,
        keep_going: bool = False,
        force: bool = False,
        voms: Optional[str] = None,
    ) -> List[Union[SealedJob, JobError]]:
        """Check every job, then seal them all; a :class:`JobError` lists
        every problem and nothing is sealed, unless ``keep_going``."""
