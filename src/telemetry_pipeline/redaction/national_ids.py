"""National identifiers, tax, health, licence and vehicle numbers: one family per number type,
grouped by region so a deployment turns on only the regions it serves (`redaction.regions`).

Each family is a shape (a regex in the syntax Python's re and Hyperscan share: no lookarounds, no
backreferences, ASCII classes, so the prefilter uses the same text) and a check. The check is
python-stdnum's validator where stdnum has one that agrees with the peer corpus (Presidio's
judgements), else our own check digit (source noted), else the format alone where the number type
has no check digit and its format is specific (letters in fixed places, a region code).

Bare digit runs are the risk: a random 9- or 11-digit number passes some family's check digit
roughly one time in three. Runs of 10, 13, 16 and 19 digits that read as a recent epoch time in
seconds, ms, us or ns are timestamps, never identifiers (is_epoch_time).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from enum import StrEnum

from stdnum import verhoeff
from stdnum.au import abn, acn, tfn
from stdnum.ca import sin
from stdnum.de import stnr
from stdnum.es import nie, nif
from stdnum.gb import nhs
from stdnum.in_ import aadhaar, pan
from stdnum.iso7064 import mod_11_10
from stdnum.it import codicefiscale, iva
from stdnum.pl import pesel
from stdnum.se import orgnr, personnummer
from stdnum.sg import uen
from stdnum.th import pin
from stdnum.tr import tckimlik
from stdnum.us import rtn
from stdnum.za import idnr


class Region(StrEnum):
    AU = "au"
    CA = "ca"
    EU = "eu"  # Germany, Spain, Finland, Italy, Poland, Sweden
    IN = "in"
    KR = "kr"
    NG = "ng"
    SG = "sg"
    TH = "th"
    TR = "tr"
    UK = "uk"
    US = "us"
    ZA = "za"


_SEPARATORS = str.maketrans("", "", " -./:_+")


def _compact(text: str) -> str:
    return text.translate(_SEPARATORS).upper()


def _stdnum(module) -> Callable[[str], bool]:
    return lambda text: bool(module.is_valid(_compact(text)))


def _format_only(_text: str) -> bool:
    return True


def _one_separator(text: str) -> bool:
    """Digit groups split all by one kind of separator or not at all ("130 692-544" is no SIN)."""
    return len({char for char in text if not char.isalnum()}) <= 1


def _ca_sin(text: str) -> bool:
    return _one_separator(text) and sin.is_valid(_compact(text))


def _us_npi(text: str) -> bool:
    # CMS: the Luhn check over the NPI prefixed with 80840 (the card issuer prefix for US health).
    from stdnum import luhn

    return luhn.is_valid("80840" + _compact(text))


def _us_dea(text: str) -> bool:
    # DEA registration number: (d1 + d3 + d5) + 2 (d2 + d4 + d6), last digit = d7.
    digits = [int(char) for char in text[2:]]
    total = digits[0] + digits[2] + digits[4] + 2 * (digits[1] + digits[3] + digits[5])
    return total % 10 == digits[6]


def _de_tax_id(text: str) -> bool:
    digits = _compact(text)
    return digits[0] != "0" and len(set(digits[:10])) > 1 and mod_11_10.is_valid(digits)


def _de_tax_number(text: str) -> bool:
    # The 13-digit ELSTER form has no check digit stdnum knows; the state forms (123/456/78901) do.
    return "/" not in text or stnr.is_valid(text)


def _letter_value(char: str) -> int:
    return ord(char) - 55 if char.isalpha() else int(char)  # A=10 ... Z=35 (ICAO 9303)


def _icao_document(text: str) -> bool:
    """German identity card and passport serial numbers: ICAO 9303 check digit (weights 7, 3, 1)."""
    serial = text.upper()
    total = sum(_letter_value(char) * (7, 3, 1)[index % 3] for index, char in enumerate(serial[:-1]))
    return total % 10 == int(serial[-1])


def _de_health_insurance(text: str) -> bool:
    # Krankenversichertennummer: the letter as two digits (A=01), then Luhn-like weights 1, 2.
    number = f"{ord(text[0].upper()) - 64:02d}{text[1:9]}"
    total = sum(sum(divmod(int(char) * (1, 2)[index % 2], 10)) for index, char in enumerate(number))
    return total % 10 == int(text[9])


def _de_lanr(text: str) -> bool:
    # Lebenslange Arztnummer: weights 4, 9 over the first six digits; the seventh is the check.
    total = sum(int(char) * (4, 9)[index % 2] for index, char in enumerate(text[:6]))
    return (10 - total % 10) % 10 == int(text[6])


def _de_social_security(text: str) -> bool:
    # Rentenversicherungsnummer: the letter as two digits, weights 2,1,2,5,7,1,2,1,2,1,2,1.
    number = f"{text[:8]}{ord(text[8].upper()) - 64:02d}{text[9:11]}"
    day, month = int(text[2:4]), int(text[4:6])
    if not (1 <= day % 50 <= 31 and 1 <= month <= 12):
        return False
    weights = (2, 1, 2, 5, 7, 1, 2, 1, 2, 1, 2, 1)
    total = sum(sum(divmod(int(char) * weight, 10)) for char, weight in zip(number, weights, strict=True))
    return total % 10 == int(text[11])


_HETU_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"


def _fi_hetu(text: str) -> bool:
    # Henkilötunnus with the century signs of 2023 (A-F, U-Y) stdnum 2.2 does not know yet.
    code = text.upper()
    if not _valid_date(code[4:6], code[2:4], code[0:2]) or int(code[7:10]) < 2:
        return False
    return _HETU_CHECK[int(code[:6] + code[7:10]) % 31] == code[10]


def _valid_date(year: str, month: str, day: str) -> bool:
    try:
        datetime.date(2000 + int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def _kr_brn(text: str) -> bool:
    # Business registration number: stdnum 2.2 checks its format only; the National Tax Service's
    # check digit (weights 1,3,7,1,3,7,1,3,5, plus the tens of 5 x the ninth digit) keeps a random
    # 10-digit number out nine times in ten.
    digits = [int(char) for char in _compact(text)]
    total = sum(digit * weight for digit, weight in zip(digits[:9], (1, 3, 7, 1, 3, 7, 1, 3, 5), strict=True))
    total += digits[8] * 5 // 10
    return _compact(text)[:3] >= "101" and (10 - total % 10) % 10 == digits[9]


def _kr_rrn(text: str) -> bool:
    # Resident and foreigner registration numbers: a birth date, then a sex/century digit 1-8.
    digits = _compact(text)
    return _valid_date(digits[:2], digits[2:4], digits[4:6])


def _au_medicare(text: str) -> bool:
    digits = _compact(text)
    total = sum(int(char) * weight for char, weight in zip(digits[:8], (1, 3, 7, 9, 1, 3, 7, 9), strict=True))
    return total % 10 == int(digits[8])


_UK_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def _uk_nhs(text: str) -> bool:
    return _one_separator(text) and nhs.is_valid(_compact(text))


def _uk_nino(text: str) -> bool:
    return _compact(text)[:2] not in _UK_NINO_BAD_PREFIXES


def _uk_plate(text: str) -> bool:
    """In lower case only with a space ("aa02 aaa"): "mx64-uwp" is a build name."""
    return text.isupper() or " " in text


_LETTER = "[A-Za-z]"


def _i(letters: str) -> str:
    """A class of letters in both cases (Hyperscan and re share [...], not every flag form)."""
    return "[" + letters + letters.upper() + "]"


_IN_STATES = (
    "AN|AP|AR|AS|BR|CG|CH|DD|DL|DN|GA|GJ|HP|HR|JH|JK|KA|KL|LA|LD|MH|ML|MN|MP|MZ|NL|OD|OR|PB|PY|RJ|SK"
    "|TN|TR|TS|UK|UP|WB"
)
_MBI_LETTER = _i("ac-hjkmnp-rt-y")
_MBI_ALNUM = "[ac-hjkmnp-rt-yAC-HJKMNP-RT-Y0-9]"
_CF_DIGIT = "[0-9lmnpqrstuvLMNPQRSTUV]"


class Family:
    """One number type: its name, region, shape and check."""

    __slots__ = ("check", "name", "pattern", "region", "shape")

    def __init__(self, name: str, region: Region, shape: str, check: Callable[[str], bool]) -> None:
        self.name = name
        self.region = region
        self.shape = shape
        self.check = check
        self.pattern = re.compile(_bounded(shape))


def _bounded(shape: str) -> str:
    """The shape with boundaries. A number may follow letters ("is030594W903B") but not hex letters,
    digits or joiners (the tail of a UUID or a trace id is no identifier); one led by a letter
    follows no letter or digit; and no digit group may go on either side ("AL47 2121 1009 0000 ..."
    is one IBAN, not an identifier inside one)."""
    return _LEFT + "(?:" + shape + ")" + _RIGHT


_LEFT = r"(?:(?=[0-9])(?<![0-9A-Fa-f_.+-])(?<![0-9] )|(?=[A-Za-z])(?<![0-9A-Za-z_.+-]))"


_RIGHT = r"(?![A-Za-z0-9_])(?:(?<![0-9])|(?![.,:/ -][0-9]))"


# Where _bounded lets an identifier start: after no letter, digit or joiner, or a digit after a
# letter that is no hex digit.
ID_STARTS = re.compile(r"(?<![0-9A-Za-z_.+\-])[0-9A-Za-z]|(?<=[G-Zg-z])[0-9]")


FAMILIES: tuple[Family, ...] = (
    # Europe
    Family("de_tax_id", Region.EU, "[1-9][0-9] ?[0-9]{3} ?[0-9]{3} ?[0-9]{3}", _de_tax_id),
    Family("de_tax_number", Region.EU, "(?:0[1-9]|1[0-6])[0-9]{11}|[0-9]{2,3}/[0-9]{3,4}/[0-9]{4,5}",
           _de_tax_number),
    Family("de_vat_id", Region.EU, "[dD][eE][ .-]?[0-9]{3}[ .-]?[0-9]{3}[ .-]?[0-9]{3}", _format_only),
    Family("de_health_insurance", Region.EU, "[A-Za-z][0-9]{9}", _de_health_insurance),
    Family("de_id_document", Region.EU,
           f"{_i('cfghjklmnprtvwxyz')}[CFGHJKLMNPRTVWXYZcfghjklmnprtvwxyz0-9]{{7}}[0-9]", _icao_document),
    # The identity card before 2010: T and eight digits, no check digit.
    Family("de_id_card_old", Region.EU, "[Tt][0-9]{8}", _format_only),
    Family("de_lanr", Region.EU, "[0-9]{9}", _de_lanr),
    Family("de_social_security", Region.EU, "[0-9]{8}[A-Za-z][0-9]{3}", _de_social_security),
    Family("de_commercial_register", Region.EU, "[hH][rR][aAbB] ?[0-9]{1,6}", _format_only),
    Family("es_nie", Region.EU, "[XYZxyz]-?[0-9]{7}-?[A-Za-z]", _stdnum(nie)),
    Family("es_nif", Region.EU, "[0-9]{7,8}-?[A-Za-z]", lambda text: nif.is_valid(_compact(text).zfill(9))),
    Family("fi_hetu", Region.EU, "[0-9]{6}[-+A-FU-Ya-fu-y][0-9]{3}[0-9A-Ya-y]", _fi_hetu),
    Family("it_fiscal_code", Region.EU,
           f"{_LETTER}{{6}}{_CF_DIGIT}{{2}}[ABCDEHLMPRSTabcdehlmprst]{_CF_DIGIT}{{2}}{_LETTER}{_CF_DIGIT}{{3}}{_LETTER}",
           _stdnum(codicefiscale)),
    Family("it_vat", Region.EU, "[0-9]{8}_?[0-9]{3}", _stdnum(iva)),
    Family("pl_pesel", Region.EU, "[0-9]{11}", _stdnum(pesel)),
    Family("se_personnummer", Region.EU, "(?:[0-9]{2})?[0-9]{6}[-+]?[0-9]{4}", _stdnum(personnummer)),
    Family("se_orgnr", Region.EU, "[0-9]{6}-?[0-9]{4}", _stdnum(orgnr)),
    # United Kingdom
    Family("uk_nhs", Region.UK,
           "[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}",
           _uk_nhs),
    Family("uk_nino", Region.UK,
           f"{_i('a-ceghj-pr-tw-z')}{_i('a-ceghj-npr-tw-z')}"
           f" ?[0-9]{{2}} ?[0-9]{{2}} ?[0-9]{{2}} ?{_i('a-d')}",
           _uk_nino),
    # DVLA: surname (9-padded), decade, month (+50: female), day, year, initials, digit, check letters.
    Family("uk_driving_licence", Region.UK,
           f"(?:{_LETTER}{{5}}|{_LETTER}{{4}}9|{_LETTER}{{3}}99|{_LETTER}{{2}}999)[0-9]"
           f"(?:0[1-9]|1[0-2]|5[1-9]|6[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9][A-Za-z9]{{2}}[0-9]{_LETTER}{{2}}",
           _format_only),
    Family("uk_vehicle_registration", Region.UK,
           f"{_i('a-hj-pr-y')}{_i('a-hj-pr-z')}(?:0[2-9]|[12][0-9]|5[1-9]|[67][0-9])"
           f"[ -]?{_i('a-hj-pr-z')}{{3}}",
           _uk_plate),
    # United States
    Family("us_itin", Region.US,
           "9[0-9]{2}-?(?:5[0-9]|6[0-5]|7[0-9]|8[0-8]|9[0-24-9])-?[0-9]{4}",
           _one_separator),
    Family("us_npi", Region.US, "[12][0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{3}", _us_npi),
    Family("us_mbi", Region.US,
           f"[1-9]{_MBI_LETTER}{_MBI_ALNUM}[0-9]-?{_MBI_LETTER}{_MBI_ALNUM}[0-9]-?{_MBI_LETTER}{{2}}[0-9]{{2}}",
           _format_only),
    Family("us_aba_routing", Region.US, "[0-9]{4}-?[0-9]{4}-?[0-9]", _stdnum(rtn)),
    Family("us_dea", Region.US, f"{_i('abcdefghjklmprstux')}(?:{_LETTER}|9)[0-9]{{7}}", _us_dea),
    # Canada, Australia
    Family("ca_sin", Region.CA, "[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{3}", _ca_sin),
    Family("au_abn", Region.AU, "[0-9]{2} ?[0-9]{3} ?[0-9]{3} ?[0-9]{3}", _stdnum(abn)),
    Family("au_acn", Region.AU, "[0-9]{3} ?[0-9]{3} ?[0-9]{3}", _stdnum(acn)),
    Family("au_tfn", Region.AU, "[0-9]{3} ?[0-9]{3} ?[0-9]{2,3}", _stdnum(tfn)),
    Family("au_medicare", Region.AU, "[2-6][0-9]{3} ?[0-9]{5} ?[0-9]", _au_medicare),
    # India
    Family("in_aadhaar", Region.IN, "[2-9][0-9]{3}[ :-]?[0-9]{4}[ :-]?[0-9]{4}",
           lambda text: _one_separator(text) and aadhaar.is_valid(_compact(text))),
    Family("in_pan", Region.IN, "[A-Za-z]{3}[ABCFGHLJPTabcfghljpt][A-Za-z][0-9]{4}[A-Za-z]", _stdnum(pan)),
    Family("in_gstin", Region.IN,
           "(?:0[1-9]|[12][0-9]|3[0-7])[A-Z]{5}[0-9]{4}[A-Z][1-9A-Z]Z[0-9A-Z]",
           _format_only),
    Family("in_voter", Region.IN, "[A-Z]{3}[0-9]{7}", _format_only),
    Family("in_vehicle_registration", Region.IN,
           f"(?:{_IN_STATES})[ -]?[0-9]{{1,2}}[ -]?[A-Z]{{1,3}}[ -]?[0-9]{{4}}",
           _format_only),
    # Korea, Singapore, Thailand, Turkey, South Africa, Nigeria
    Family("kr_rrn", Region.KR, "[0-9]{6}-?[1-8][0-9]{6}", _kr_rrn),
    Family("kr_brn", Region.KR, "[0-9]{3}-?[0-9]{2}-?[0-9]{5}", _kr_brn),
    Family("kr_driver_license", Region.KR,
           "(?:1[1-9]|2[0-8])[ -]?[0-9]{2}[ -]?[0-9]{6}[ -]?[0-9]{2}",
           _one_separator),
    # NRIC/FIN: the peers accept the format without the check letter; upper case only, to keep it specific.
    Family("sg_nric", Region.SG, "[STFGM][0-9]{7}[A-Z]", _format_only),
    Family("sg_uen", Region.SG,
           f"[0-9]{{8,9}}{_LETTER}|{_i('rst')}[0-9]{{2}}{_LETTER}{{2}}[0-9]{{4}}{_LETTER}",
           _stdnum(uen)),
    Family("th_tnin", Region.TH, "[1-8][0-9]{12}", _stdnum(pin)),
    Family("tr_national_id", Region.TR, "[1-9][0-9]{10}", _stdnum(tckimlik)),
    # Province, letters, digits; without spaces only with three letters ("Mobile/15E148" is a build).
    Family("tr_license_plate", Region.TR,
           "(?:0[1-9]|[1-7][0-9]|8[01])(?: [A-Z]{1,3} [0-9]{2,4}|[A-Z]{3}[0-9]{2,4}| [a-z]{3} [0-9]{2,4})",
           _format_only),
    Family("za_id", Region.ZA, "[0-9]{13}", _stdnum(idnr)),
    Family("ng_nin", Region.NG, "[0-9]{11}", lambda text: verhoeff.is_valid(text)),
    Family("ng_vehicle_registration", Region.NG,
           f"{_LETTER}{{3}}[ -]?[0-9]{{3}}{_LETTER}{{2}}",
           _format_only),
)

_EPOCH_DIGITS = frozenset({10, 13, 16, 19})


def is_epoch_time(digits: str) -> bool:
    """A bare run of 10, 13, 16 or 19 digits from 17... to 19...: an epoch time in s, ms, us or ns
    from 2023-11 to 2033-05, not an identifier (the ELSTER tax number 1681508150001 is one)."""
    return len(digits) in _EPOCH_DIGITS and "17" <= digits[:2] <= "19"


# Widely published example SSNs, never issued (078-05-1120 was printed in a wallet insert in 1938).
PUBLISHED_EXAMPLES = frozenset({"078051120", "219099999", "457555462"})


_COUNTING = "01234567890123456789"


def is_placeholder(digits: str) -> bool:
    """One digit repeated ("000000000"), counting up from 0 or 1 ("0123456789") or a published
    example: a filler, not a number."""
    counting = digits[0] in "01" and digits in _COUNTING
    return len(set(digits)) == 1 or counting or digits in PUBLISHED_EXAMPLES


# Presidio's context words the other way round: a bare number next to a unit or named as a
# quantity ("took 123456789 ns", "bytes=876543210") is a measurement, not an identifier.
_UNIT_AFTER = re.compile(r" ?(?:[mun\u00b5]?s|sec|ms|bytes?|[kmgt]i?b|%)(?![A-Za-z])", re.IGNORECASE)
_QUANTITY_BEFORE = re.compile(
    r"(?:size|count|bytes|len|length|offset|duration|latency|elapsed|took|total|amount|price|qty|quantity"
    r"|seq|sequence|version|port|pid)[ _.-]?(?:[a-z]{1,8})?[\"']?\s?[=:]?\s?[\"']?$",
    re.IGNORECASE,
)


def is_quantity(text: str, start: int, end: int) -> bool:
    return bool(_UNIT_AFTER.match(text, end)) or bool(_QUANTITY_BEFORE.search(text[max(0, start - 24):start]))


def _alternation(shapes: list[str]) -> re.Pattern[str] | None:
    return re.compile("(?:" + "|".join(shapes) + ")" + _RIGHT) if shapes else None


class NationalIds:
    """The families of some regions: one candidate regex of their shapes, then each family's own
    pattern and check at a candidate's position."""

    def __init__(self, regions: frozenset[Region] | None = None) -> None:
        self.families = tuple(family for family in FAMILIES if regions is None or family.region in regions)
        # Matched only at ID_STARTS, which hold the left boundary: the shapes and the right one;
        # those led by a digit at a digit, the others at a letter (a shape may be both).
        shapes = [family.shape for family in self.families]
        digit_led = [shape for shape in shapes if DIGIT_LED.match(shape)]
        letter_led = [
            shape for shape in shapes if not DIGIT_LED.match(shape) or _LETTER_BRANCH.search(shape)
        ]
        self.at_digit = _alternation(digit_led)
        self.at_letter = _alternation(letter_led)
        self.candidates = self.families or None

    def confirm(self, text: str, start: int) -> tuple[int, str] | None:
        """The longest number of a family that starts at `start` and passes its check: (end, family)."""
        best: tuple[int, str] | None = None
        for family in self.families:
            match = family.pattern.match(text, start)
            if match is None or (best is not None and match.end() <= best[0]):
                continue
            found = match.group()
            if found.isdigit() and (
                is_epoch_time(found) or is_placeholder(found) or is_quantity(text, start, match.end())
            ):
                continue
            if family.check(found):
                best = (match.end(), family.name)
        return best


# The prefilter's stand-in for _bounded's lookbehinds, as a consumed byte: not after a letter, a
# digit or a joiner (a shape led by a digit may also follow a letter that is no hex digit). At a
# string's start the byte before is its length, which may be any byte: so also after the tag of a
# scanned string (AnyValue.string_value 0x0a; Status.message and Event.name 0x12; Span.name 0x2a)
# or a long length's first byte, followed by such a length byte. A shape tried after every letter
# costs the scan five times more than one tried at word starts.
_LOOSE_LEFT = rb"(?:[^0-9A-Za-z_.+\-]|[\x0a\x12\x2a\x80-\xff][0-9A-Za-z_.+\-])"
DIGIT_LED = re.compile(r"\(\?:\[?[0-9]|\[?[0-9]")
_LETTER_BRANCH = re.compile(r"\|\[[A-Za-z]")  # a branch led by a letter (sg_uen's R16RF0037F)


# Six digits, a separator allowed before each of the last four: every identifier of a digit-led
# shape starts with such a run, except those of DIGIT_RUN_EXCEPTIONS (test_prefilter checks it on
# samples of each shape). The prefilter looks for this run in their place: one run costs a Hyperscan
# pass a tenth of what the shapes themselves cost, and is found less often than they are (no dots:
# IP addresses and versions are no identifiers).
DIGIT_RUN = "[0-9]{2}(?:[ /:_+-]?[0-9]){4}"
# Digit-led shapes with fewer digits in a row (27AAPFU0939F1ZV, 34 ABC 123, 1EG4-TE5-MK73) or a
# letter-led branch (sg_uen's R16RF0037F).
DIGIT_RUN_EXCEPTIONS = frozenset({"in_gstin", "tr_license_plate", "us_mbi", "sg_uen"})


def loose_shapes(regions: frozenset[Region] | None = None) -> bytes:
    """A superset of the shapes of the regions' families (None: all) after the stand-in for their
    left boundary, for the Hyperscan prefilter (no right boundary: the byte after a string is a
    field tag): DIGIT_RUN for digit-led shapes, the others themselves; b"" for no region."""
    families = [family for family in FAMILIES if regions is None or family.region in regions]
    if not families:
        return b""
    stood_for = [
        family for family in families
        if DIGIT_LED.match(family.shape) and family.name not in DIGIT_RUN_EXCEPTIONS
    ]
    shapes = [DIGIT_RUN] if stood_for else []
    shapes += [family.shape for family in families if family not in stood_for]
    digit_led = [shape for shape in shapes if DIGIT_LED.match(shape)]
    pattern = _LOOSE_LEFT + b"(?:" + "|".join(f"(?:{shape})" for shape in shapes).encode() + b")"
    if digit_led:
        pattern += b"|[G-Zg-z](?:" + "|".join(f"(?:{shape})" for shape in digit_led).encode() + b")"
    return pattern
