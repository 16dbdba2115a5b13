"""Type stubs of the jobseal extension module (jobseal._jobseal)."""

import datetime
import os
import pathlib
from typing import Final, List, Optional, Tuple, Union, final

__version__: Final[str]
#: The git commit the wheel was built from (40 hex digits), or ``"unknown"``.
__commit__: Final[str]
#: Every reason code a deny can carry (``spec/jobseal.md`` section 9), in
#: the order of the checks. A code not listed here MUST be treated as a deny.
REASON_CODES: Final[Tuple[str, ...]]

__all__ = [
    "REASON_CODES",
    "ConfigError",
    "Decision",
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
