"""``ssh -o KEY=VALUE`` options as OpenSSH's client reads them, refused where it refuses them.

An inventory's ``ansible_ssh_args`` / ``ansible_ssh_common_args`` / ``ansible_ssh_extra_args``
are ssh command-line arguments: Ansible hands them to ssh, and ssh stops on a bad one
(``-o 'User=c d'``: "keyword user extra arguments at end of line"). readiness read the value
it wanted (the user ``c d``) and logged in where ssh never would. Now each ``-o`` (and
``-p``) is checked as OpenSSH 9.2's ``ssh -G`` checks it and a bad one stops the inventory
(exit 2, one line naming the host and variable).

The tables below were measured on OpenSSH 9.2 (``ssh -G -o KEY=VALUE`` for every keyword
the binary knows); ``tests/inventory/test_ssh_options_against_ssh.py`` compares a generated
corpus with the real ``ssh -G``. Checked: the keyword, quoting, the number of arguments,
the values of yes/no and word-valued keywords, times, integers, ``Port`` and ``User``.
Not checked (readiness does not use them and their syntax is OpenSSH's business): the
contents of algorithm lists, forwarding specifications, IPQoS, RekeyLimit, SetEnv.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Iterator, Sequence

__all__ = [
    "FLAGS_WITH_ARGUMENT",
    "flag_arguments",
    "host_refused",
    "option_error",
    "options_error",
    "user_refused",
]

_YES_NO = ("yes", "no", "true", "false")


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# keyword -> the words it takes (compared without regard to case, as ssh does)
_WORDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        _names(
            "batchmode canonicalizefallbacklocal challengeresponseauthentication checkhostip "
            "clearallforwardings dsaauthentication enableescapecommandline enablesshkeysign "
            "exitonforwardfailure forkafterauthentication forwardx11 forwardx11trusted "
            "gatewayports gssapiauthentication gssapidelegatecredentials gssapikeyexchange "
            "gssapirenewalforcesrekey gssapitrustdns hashknownhosts hostbasedauthentication "
            "identitiesonly kbdinteractiveauthentication nohostauthenticationforlocalhost "
            "passwordauthentication permitlocalcommand proxyusefdpass pubkeyauthentication "
            "skeyauthentication stdinnull streamlocalbindunlink tcpkeepalive tisauthentication "
            "visualhostkey"
        ),
        _YES_NO,
    ),
    "compression": ("yes", "no"),
    "addressfamily": ("inet", "inet6", "any"),
    "canonicalizehostname": (*_YES_NO, "always"),
    "controlmaster": (*_YES_NO, "ask", "auto", "autoask"),
    "loglevel": _names("quiet fatal error info verbose debug debug1 debug2 debug3"),
    "requesttty": (*_YES_NO, "force", "auto"),
    "sessiontype": ("none", "subsystem", "default"),
    "stricthostkeychecking": (*_YES_NO, "ask", "accept-new", "off"),
    "syslogfacility": _names(
        "daemon user auth local0 local1 local2 local3 local4 local5 local6 local7"
    ),
    "tunnel": (*_YES_NO, "point-to-point", "ethernet"),
    "updatehostkeys": (*_YES_NO, "ask"),
    "verifyhostkeydns": (*_YES_NO, "ask"),
}
_TIMES = frozenset(
    _names("connecttimeout forwardx11timeout protocolkeepalives serveraliveinterval setuptimeout")
)
_INTEGERS = frozenset(
    _names(
        "canonicalizemaxdots connectionattempts numberofpasswordprompts requiredrsasize "
        "serveralivecountmax"
    )
)
# Keywords that take any number of arguments (the rest take exactly one). The deprecated
# and unsupported ones are read and ignored by ssh, whatever follows them.
_IGNORED = frozenset(
    _names(
        "cipher protocol fallbacktorsh rhostsauthentication useblacklistedkeys useprivilegedport "
        "useroaming usersh afstokenpassing compressionlevel kerberosauthentication "
        "kerberostgtpassing rhostsrsaauthentication rsaauthentication"
    )
)
_MANY = frozenset(
    _names(
        "canonicaldomains canonicalizepermittedcnames globalknownhostsfile globalknownhostsfile2 "
        "ipqos knownhostscommand localforward logverbose permitremoteopen proxycommand proxyjump "
        "rekeylimit remotecommand remoteforward sendenv setenv userknownhostsfile "
        "userknownhostsfile2"
    )
)
_ONE = frozenset(
    _names(
        "addkeystoagent bindaddress bindinterface casignaturealgorithms certificatefile ciphers "
        "controlpath controlpersist dynamicforward escapechar fingerprinthash forwardagent "
        "gssapiclientidentity gssapikexalgorithms gssapiserveridentity hostbasedacceptedalgorithms "
        "hostbasedkeytypes hostkeyalgorithms hostkeyalias hostname identityagent identityfile "
        "identityfile2 ignoreunknown kbdinteractivedevices kexalgorithms macs pkcs11provider port "
        "preferredauthentications pubkeyacceptedalgorithms pubkeyacceptedkeytypes revokedhostkeys "
        "securitykeyprovider smartcarddevice streamlocalbindmask tunneldevice user xauthlocation"
    )
)
KEYWORDS = frozenset((*_WORDS, *_TIMES, *_INTEGERS, *_IGNORED, *_MANY, *_ONE))
_NOT_ON_COMMAND_LINE = frozenset(("host", "match", "include"))
# "-o Key=Value", "-o 'Key Value'", "-o Key = Value", as ssh's config-line reader splits it
_DASH_O = re.compile(r"\s*([^\s=]+)\s*(?:=\s*|\s+|$)(.*)", re.S)
_TIME = re.compile(r"\+?(?:[0-9]+[sSmMhHdDwW]?)+")
# ssh refuses a user that could be read as an option or that carries shell syntax
# The characters OpenSSH 9.2's client refuses in a host name and in a user name ("hostname
# / remote username contains invalid characters"), and a leading "-": measured with
# ssh -G for every ASCII character (tests/inventory/test_ssh_options_against_ssh.py).
_BAD_HOST = re.compile(r"^-|[\x00-\x20\"$&'(),;<>\\`{|}\x7f]")
_BAD_USER = re.compile(r"^-|[\x00-\x1f\"&'();<>`{|}\x7f]")


def option_error(text: str, ignore_unknown: Sequence[str] = ()) -> str | None:
    """Why ``ssh -o TEXT`` is refused by OpenSSH, or None when it is accepted."""
    found = _DASH_O.fullmatch(text)
    if found is None or not found.group(1):
        return f"-o {text!r} is not an ssh option (write -o Key=Value)"
    keyword, rest = found.group(1).lower(), found.group(2)
    if keyword not in KEYWORDS:
        return _unknown_error(keyword, found.group(1), text, ignore_unknown)
    return _arguments_error(keyword, found.group(1), rest, text)


def _unknown_error(keyword: str, name: str, text: str, ignore: Sequence[str]) -> str | None:
    if keyword in _NOT_ON_COMMAND_LINE:
        return f"{name} is not an ssh option on the command line (-o {text!r})"
    if any(fnmatch.fnmatchcase(keyword, p.lower()) for p in ignore):
        return None
    return f"-o {text!r}: {name} is not an ssh option (ssh: Bad configuration option)"


def _arguments_error(keyword: str, name: str, rest: str, text: str) -> str | None:
    try:
        args = shlex.split(rest, comments=False)
    except ValueError:
        return f"-o {text!r}: unbalanced quotes (ssh: invalid quotes)"
    if not args or not args[0]:
        return f"-o {text!r}: no value after {name}"
    if keyword in _IGNORED:
        return None
    if keyword not in _MANY and len(args) > 1:
        return (
            f"-o {text!r}: {name} takes one value, not {len(args)} "
            "(quote a value with spaces: -o 'Key=\"a b\"')"
        )
    if keyword == "proxyjump":  # ssh reads its first word as written, quotes and all
        return _jump_error(rest.split(maxsplit=1)[0], text)
    return _value_error(keyword, name, args[0], text)


def _jump_error(value: str, text: str) -> str | None:
    if value.lower() == "none":
        return None
    for hop in value.split(","):
        host = re.sub(r"^ssh://", "", hop).rpartition("@")[2]
        host = host[1 : host.index("]")] if host.startswith("[") and "]" in host else host
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        if not host or _BAD_HOST.search(host):
            return f"-o {text!r}: ProxyJump host {host!r} is not a host name ssh accepts"
    return None


def _value_error(keyword: str, name: str, value: str, text: str) -> str | None:
    words = _WORDS.get(keyword)
    if words is not None and value.lower() not in words:
        return f"-o {text!r}: {name} takes {', '.join(words)}, not {value!r}"
    if keyword in _TIMES and value.lower() != "none" and not _TIME.fullmatch(value):
        return f"-o {text!r}: {name} takes a time (30, 5m, 1h), not {value!r}"
    if keyword in _INTEGERS and not re.fullmatch(r"\+?[0-9]{1,9}", value):
        return f"-o {text!r}: {name} takes a whole number, not {value!r}"
    if keyword == "port" and port_error(value):
        return f"-o {text!r}: Port {value!r} is not a port number"
    if keyword == "user" and _BAD_USER.search(value):
        return f"-o {text!r}: User {value!r} has characters ssh refuses in a user name"
    return None


def host_refused(value: str) -> bool:
    """Whether ssh refuses ``value`` as the host name to connect to."""
    return bool(_BAD_HOST.search(value))


def user_refused(value: str) -> bool:
    """Whether ssh refuses ``value`` as the remote user name."""
    return bool(_BAD_USER.search(value))


_PORT = re.compile(r"[ \t\n\v\f\r]*([+-]?)0*([0-9]{1,6})")


def port_error(value: str) -> bool:
    """Whether ssh refuses ``value`` as a port: its a2port is ``strtonum`` (C's strtoll in
    base 10: leading white space, a sign, decimal digits, nothing after them), then 1..65535.
    ``+22``, `` 22``, ``022`` are 22 to ssh; ``0x16``, ``22 ``, ``-22``, ``+0`` are refused."""
    found = _PORT.fullmatch(value) if len(value) <= 1000 else None
    if found is None:
        return True
    number = int(found.group(2))
    return found.group(1) == "-" or not 0 < number < 65536


# OpenSSH's getopt string: the flags that take an argument (in the same word or the next)
FLAGS_WITH_ARGUMENT = frozenset("BbcDEeFIiJLlmOopQRSWw")


def flag_arguments(words: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(flag, argument) for each flag of ``words`` (an ssh command line's arguments,
    already split) that takes one, in command-line order, as ssh's getopt reads them:
    flags clustered in one word (``-4vp 2222``), the argument in the same word or the next."""
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if len(word) < 2 or not word.startswith("-"):
            continue
        for position in range(1, len(word)):
            flag = word[position]
            if flag not in FLAGS_WITH_ARGUMENT:
                continue
            given = word[position + 1 :]
            if not given and index < len(words):
                given = words[index]
                index += 1
            yield flag, given
            break


def options_error(words: Sequence[str]) -> str | None:
    """The first reason ssh would refuse the ``-o``, ``-p``, ``-J`` and ``-l`` arguments among ``words``
    (an ssh command line's arguments, already split), or None."""
    ignore: list[str] = []
    for flag, given in flag_arguments(words):
        if flag == "o":
            error = option_error(given, ignore)
            if error:
                return error
            found = _DASH_O.fullmatch(given)
            if found and found.group(1).lower() == "ignoreunknown":
                ignore += found.group(2).strip().strip('"').split(",")
        elif flag == "p" and port_error(given):
            return f"-p {given!r} is not a port number"
        elif flag == "J" and (error := _jump_error(given, f"ProxyJump={given}")):
            return error.replace("-o 'ProxyJump=", "-J '", 1)
        elif flag == "l" and given and _BAD_USER.search(given):
            return f"-l {given!r} has characters ssh refuses in a user name"
    return None
