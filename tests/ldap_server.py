"""A private, throwaway OpenLDAP server for the tests: Debian's slapd started from a
temporary folder (slapd.conf, back_mdb, the memberof overlay) on free 127.0.0.1 ports,
plain and ldaps, with a certificate from a throwaway CA, and loaded with ldapadd (the
memberof overlay fills memberOf only on writes through the server, never on slapadd).

Run as root, slapd stays root in its private folder (no ``-u``): it reads nothing else.
Tests may stop, restart, pause and resume it to stage an outage or a hung directory;
it is never a shared server.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ports import free_port
from tests.waiting import wait_until

INSTALL = "install Debian's slapd and ldap-utils packages (./scripts/test does)"
MODULES = Path("/usr/lib/ldap")
SCHEMAS = Path("/etc/ldap/schema")

BASE_DN = "dc=example,dc=org"
PEOPLE = f"ou=people,{BASE_DN}"
GROUPS = f"ou=groups,{BASE_DN}"
# A throwaway server's passwords, not secrets.
ROOT_DN = f"cn=admin,{BASE_DN}"
ROOT_PASSWORD = "switchboard-tests-directory-root"
SERVICE_DN = f"cn=switchboard,ou=services,{BASE_DN}"
SERVICE_PASSWORD = "switchboard-tests-service-account"
OPERATORS = f"cn=switchboard-operators,{GROUPS}"
ADMINS = f"cn=switchboard-admins,{GROUPS}"
PARKING = f"cn=parking-permits,{GROUPS}"  # a group Switchboard maps to nothing

# uid -> (password, groups); nora is in no group, pete only in one that maps to nothing.
USERS = {
    "olive": ("olive-operator-pass", [OPERATORS]),
    "adam": ("adam-admin-pass", [ADMINS, OPERATORS]),
    "nora": ("nora-no-group-pass", []),
    "pete": ("pete-parking-pass", [PARKING]),
    "sam": ("sam-staff-pass", [OPERATORS]),
}
# A second sam, outside ou=people: a search over the whole tree finds two.
CONTRACTOR_SAM = f"uid=sam,ou=contractors,{BASE_DN}"


class SlapdUnavailable(RuntimeError):
    """slapd, ldapadd or openssl is not installed."""


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(path) for path in (Path("/usr/sbin") / name,) if path.exists()), None)
    if found is None:
        raise SlapdUnavailable(f"{name} not found: {INSTALL}")
    return found


def user_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


class PrivateDirectory:
    """One slapd of the tests' own, on 127.0.0.1, answering once ``start`` returns.
    Its certificate names localhost and not 127.0.0.1, so a TLS client that checks
    names takes ``named_url`` or ``ldaps_url`` and refuses 127.0.0.1; ``ca_file``
    signed it, ``other_ca_file`` did not."""

    def __init__(self) -> None:
        self._slapd = _binary("slapd")
        self._ldapadd = _binary("ldapadd")
        self._ldapwhoami = _binary("ldapwhoami")
        if not (MODULES / "back_mdb.so").exists() or not (MODULES / "memberof.so").exists():
            raise SlapdUnavailable(f"back_mdb and memberof not in {MODULES}: {INSTALL}")
        self.folder = Path(tempfile.mkdtemp(prefix="switchboard-ldap-"))
        self.port = free_port()
        self.ldaps_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._loaded = False
        (self.folder / "data").mkdir()
        _certificates(self.folder)
        (self.folder / "slapd.conf").write_text(_config(self.folder))

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def named_url(self) -> str:
        """The plain port by the name its certificate gives (for StartTLS)."""
        return f"ldap://localhost:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://localhost:{self.ldaps_port}"

    @property
    def ca_file(self) -> str:
        return str(self.folder / "ca.pem")

    @property
    def other_ca_file(self) -> str:
        return str(self.folder / "other-ca.pem")

    def start(self) -> None:
        """Start slapd and wait until it answers a bind; the first start loads the
        directory's entries."""
        assert self._process is None, "slapd is running already"
        with open(self.folder / "slapd.log", "ab") as log:
            # -d 0: stay in the foreground, so the process is ours to stop and reap.
            self._process = subprocess.Popen(
                [self._slapd, "-f", str(self.folder / "slapd.conf"),
                 "-h", f"{self.url} ldaps://127.0.0.1:{self.ldaps_port}", "-d", "0"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._answers, what=f"slapd to answer on {self.url}")
        if not self._loaded:
            self._add(_entries())
            self._loaded = True

    def stop(self) -> None:
        """Stop slapd (its data stays for the next start); connections are refused."""
        process, self._process = self._process, None
        if process is None:
            return
        if self._paused:
            self._continue(process)
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def pause(self) -> None:
        """Freeze slapd: the kernel still accepts connections, nothing answers them."""
        assert self._process is not None, "slapd is not running"
        os.kill(self._process.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        assert self._process is not None, "slapd is not running"
        self._continue(self._process)

    def _continue(self, process: subprocess.Popen[bytes]) -> None:
        os.kill(process.pid, signal.SIGCONT)
        self._paused = False

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def log(self) -> str:
        return (self.folder / "slapd.log").read_text(errors="replace")[-4000:]

    def _answers(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise AssertionError(f"slapd exited with {self._process.returncode}:\n{self.log()}")
        asked = subprocess.run(
            [self._ldapwhoami, "-x", "-o", "nettimeout=5", "-H", self.url, "-D", ROOT_DN,
             "-w", ROOT_PASSWORD], capture_output=True, timeout=60, check=False)
        return asked.returncode == 0

    def _add(self, ldif: str) -> None:
        path = self.folder / "entries.ldif"
        path.write_text(ldif)
        done = subprocess.run(
            [self._ldapadd, "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD,
             "-f", str(path)], capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, f"ldapadd failed: {done.stderr}\n{self.log()}"


@pytest.fixture(scope="module")
def ldap_server() -> Iterator[PrivateDirectory]:
    """A running directory shared by a module's tests, which must not stop it."""
    yield from _running()


@pytest.fixture
def ldap_server_to_stop() -> Iterator[PrivateDirectory]:
    """A running directory of one test's own, which it may stop, restart or pause."""
    yield from _running()


def _running() -> Iterator[PrivateDirectory]:
    server = PrivateDirectory()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def _config(folder: Path) -> str:
    schemas = "".join(f"include {SCHEMAS / name}.schema\n"
                      for name in ("core", "cosine", "inetorgperson"))
    return f"""{schemas}
modulepath {MODULES}
moduleload back_mdb
moduleload memberof
pidfile {folder / "slapd.pid"}
argsfile {folder / "slapd.args"}
TLSCACertificateFile {folder / "ca.pem"}
TLSCertificateFile {folder / "server.pem"}
TLSCertificateKeyFile {folder / "server.key"}

database mdb
suffix "{BASE_DN}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {folder / "data"}
maxsize 16777216
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf

access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"""


def _entries() -> str:
    blocks = [
        f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\n"
        "dc: example\no: Example Health\n",
        *(f"dn: ou={unit},{BASE_DN}\nobjectClass: organizationalUnit\nou: {unit}\n"
          for unit in ("people", "groups", "services", "contractors")),
        f"dn: {SERVICE_DN}\nobjectClass: applicationProcess\n"
        f"objectClass: simpleSecurityObject\ncn: switchboard\n"
        f"userPassword: {SERVICE_PASSWORD}\n",
        *(_person(user_dn(uid), uid, password) for uid, (password, _) in USERS.items()),
        _person(CONTRACTOR_SAM, "sam", "contractor-sam-pass"),
    ]
    # Groups after their members, so the memberof overlay writes each memberOf.
    for group in (OPERATORS, ADMINS, PARKING):
        members = [user_dn(uid) for uid, (_, groups) in USERS.items() if group in groups]
        name = group.split(",")[0].removeprefix("cn=")
        blocks.append(f"dn: {group}\nobjectClass: groupOfNames\ncn: {name}\n"
                      + "".join(f"member: {member}\n" for member in members))
    return "\n".join(blocks)


def _person(dn: str, uid: str, password: str) -> str:
    return (f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid.title()}\n"
            f"sn: {uid.title()}\nuserPassword: {password}\n")


def _certificates(folder: Path) -> None:
    """A CA, a server certificate it signs for localhost, and a second CA that signed
    nothing here (for the certificate a client must refuse)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SlapdUnavailable("openssl not found: install Debian's openssl package")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc"]
    ca = ["-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    (folder / "server.ext").write_text(
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    for name in ("ca", "other-ca"):
        _run(folder, openssl, "req", "-x509", *key, *ca, "-days", "2",
             "-subj", f"/CN=Switchboard tests {name}",
             "-keyout", f"{name}.key", "-out", f"{name}.pem")
    _run(folder, openssl, "req", "-new", *key, "-subj", "/CN=localhost",
         "-keyout", "server.key", "-out", "server.csr")
    _run(folder, openssl, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem",
         "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", "server.ext",
         "-out", "server.pem")


def _run(folder: Path, *argv: str) -> None:
    done = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, f"{' '.join(argv[:3])} failed: {done.stderr}"
