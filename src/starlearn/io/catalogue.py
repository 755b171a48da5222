"""Label catalogues: read only the columns a join needs, select rows, resolve duplicates.

:func:`read_label_catalogue` reads a survey catalogue (APOGEE allStar, GALAH allstar,
LAMOST stellar parameters, any FITS, Parquet, CSV or ECSV table) into a
:class:`LabelCatalogue`: one row per identifier, the chosen labels and, where the
catalogue has them, their uncertainties. It is the catalogue side of ``starlearn ingest
--labels`` (``docs/readers.md``, "Joining a label catalogue").

* Column names are matched case-insensitively (``teff`` finds ``TEFF``) and, failing that,
  by their normalised form (:func:`normalise_name`: ``fe_h`` finds ``[Fe/H]``); labels
  are named by that normalised lower-case form in the output (``TEFF`` -> ``teff``).
* Reading is lazy: FITS tables are read with fitsio (cfitsio) one needed column at a
  time (without fitsio, an optional accelerator, by astropy from the memory-mapped file,
  column by column too), Parquet files with pyarrow column by column, CSV keeping only
  the needed columns (ECSV and other formats are read whole); the columns of a ``where``
  expression are read first, then the identifiers of the rows it keeps, then the labels
  of the rows that survive duplicate resolution. Unused columns are never read.
* ``where`` is a small expression language over columns (:func:`parse_where`), parsed with
  :mod:`ast` and evaluated by a whitelist of nodes: never Python's ``eval``.
* An identifier on several rows is refused or resolved by a documented rule
  (:data:`DUPLICATE_RULES`).

Survey data models of the flags used: APOGEE bitmasks
https://www.sdss4.org/dr17/irspec/apogee-bitmasks/ (EXTRATARG), GALAH DR3 flags
https://www.galah-survey.org/dr3/flags/, DESI zcatalog
https://desidatamodel.readthedocs.io/ (ZCAT_PRIMARY).
"""

from __future__ import annotations

import ast
import difflib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from starlearn.errors import InputError
from starlearn.io.fitsutil import ReadError

__all__ = ["DUPLICATE_RULES", "PRIMARY_FLAGS", "SNR_COLUMNS", "CatalogueError",
           "DuplicateIdError", "LabelCatalogue", "WhereError", "WhereExpression",
           "normalise_name", "parse_label_columns", "parse_where", "read_label_catalogue"]

DUPLICATE_RULES = ("refuse", "first", "best")
"""How an identifier on several catalogue rows (after ``where``) is handled: ``refuse``
raises :class:`DuplicateIdError` listing them; ``first`` keeps the first row in file
order; ``best`` keeps the row the survey marks primary (:data:`PRIMARY_FLAGS`), then the
one of highest S/N (:data:`SNR_COLUMNS`), then the first, and refuses when the catalogue
has neither a primary flag nor an S/N column."""

PRIMARY_FLAGS: tuple[tuple[str, str, Callable[[np.ndarray], np.ndarray]], ...] = (
    ("extratarg", "EXTRATARG bit 4 (DUPLICATE) unset",
     lambda v: (v.astype(np.int64) & 16) == 0),                       # APOGEE allStar
    ("specprimary", "SPECPRIMARY = 1", lambda v: v == 1),             # SDSS specObj, SSPP
    ("zcat_primary", "ZCAT_PRIMARY true", lambda v: v.astype(bool)),  # DESI zcatalog
    ("flag_repeat", "flag_repeat = 0", lambda v: v == 0),             # GALAH DR3 allspec
)
"""Primary-row flags ``best`` looks for, in this order (the first one the catalogue has
is used): normalised column name, description, test giving True for a primary row.
LAMOST catalogues have no such flag (their duplicates are ranked by S/N)."""

SNR_COLUMNS = ("snr", "snr_g", "snrg", "sn_g", "snr_c2_iraf", "snr_px_ccd3", "snrev")
"""S/N columns ``best`` ranks by (normalised names, first present is used): APOGEE
``SNR``, LAMOST ``snrg`` (g band), GALAH DR3 ``snr_c2_iraf``, GALAH DR4 ``snr_px_ccd3``."""

ERROR_PATTERNS = ("{}_err", "{}_error", "e_{}", "err_{}")
"""Uncertainty columns of a label column ``x`` (normalised names): ``TEFF_ERR`` (APOGEE),
``teff_err`` (LAMOST), ``e_teff`` (GALAH), ``E_[Fe/H]`` ..."""

MISSING_BELOW = -9999.0
"""Float values at or below this are survey "no value" markers and read as missing."""

_MAX_LISTED = 10
_MAX_WHERE = 10_000


class CatalogueError(ReadError):
    """A label catalogue cannot be used as asked: a column it does not have, a column of
    the wrong kind; ``path`` is the catalogue, ``reason`` says what is wrong."""


class DuplicateIdError(CatalogueError):
    """Identifiers on more than one catalogue row under ``duplicates="refuse"`` (or under
    ``"best"`` with nothing to rank them by).

    Attributes
    ----------
    ids : list of str
        Every duplicated identifier, in file order of first appearance.
    """

    def __init__(self, path: str, reason: str, ids: list[str]) -> None:
        super().__init__(path, reason)
        self.ids = ids


class WhereError(InputError, ValueError):
    """A ``where`` expression that cannot be parsed, uses something not allowed, or mixes
    kinds (text compared with a number, ``&`` on floats ...)."""


# --------------------------------------------------------------------------- names
def normalise_name(name: str) -> str:
    """The lower-case identifier a catalogue column is known by in starlearn.

    Lower case; every run of characters other than letters and digits becomes one ``_``;
    leading and trailing ``_`` are dropped; a name starting with a digit gets a leading
    ``_``.

    Examples
    --------
    >>> [normalise_name(n) for n in ("TEFF", "FE_H", "[Fe/H]", "[alpha/M]", "log g")]
    ['teff', 'fe_h', 'fe_h', 'alpha_m', 'log_g']
    """
    text = re.sub(r"[\W_]+", "_", str(name).strip().lower()).strip("_")
    if not text:
        raise ValueError(f"column name {name!r} has no letter or digit")
    return "_" + text if text[0].isdigit() else text


def _resolve(name: str, names: Sequence[str]) -> str | None:
    """The catalogue column ``name`` means: the exact name, else the one name equal to it
    ignoring case, else the one with the same normalised form; None when none matches.
    Several equally good matches raise (the message lists them)."""
    if name in names:
        return name
    for key in (str.casefold, normalise_name):
        try:
            want = key(name)
        except ValueError:
            return None
        found = [n for n in names if _safe(key, n) == want]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ValueError(f"'{name}' matches several columns ({', '.join(found)}); "
                             "give the exact name")
    return None


def _safe(key: Callable[[str], str], name: str) -> str | None:
    try:
        return key(name)
    except ValueError:
        return None


def _unknown_column(name: str, names: Sequence[str], what: str) -> str:
    close = difflib.get_close_matches(name.upper(), [n.upper() for n in names], n=3,
                                      cutoff=0.6)
    by_upper = {n.upper(): n for n in names}
    hint = (f"; did you mean {', '.join(by_upper[c] for c in close)}?" if close else "")
    listed = ", ".join(names[:40]) + (f", ... ({len(names)} columns)" if len(names) > 40
                                      else "")
    return f"{what}: no column '{name}'{hint} (columns: {listed})"


def parse_label_columns(spec: Sequence[str] | Mapping[str, str] | str
                        ) -> list[tuple[str, str]]:
    """``(label name, catalogue column)`` pairs from a label-column specification.

    Parameters
    ----------
    spec : str, sequence of str or mapping
        ``"TEFF,LOGG"`` or ``["TEFF", "LOGG"]`` (each label named after its column,
        normalised), ``"teff=TEFF,feh=[Fe/H]"`` or ``{"teff": "TEFF"}`` (named
        explicitly; the name is normalised too).

    Examples
    --------
    >>> parse_label_columns("TEFF,logg=LOGG,[Fe/H]")
    [('teff', 'TEFF'), ('logg', 'LOGG'), ('fe_h', '[Fe/H]')]
    """
    if isinstance(spec, str):
        spec = [s for s in spec.split(",") if s.strip()]
    items = (list(spec.items()) if isinstance(spec, Mapping)
             else [_split_item(s) for s in spec])
    pairs = []
    for name, column in items:
        column = str(column).strip()
        if not column:
            raise ValueError(f"label '{name}' names no catalogue column")
        pairs.append((normalise_name(name), column))
    names = [n for n, _ in pairs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"label names {', '.join(twice)} given twice (column names are "
                         "compared in lower case: TEFF and teff are one label)")
    if not pairs:
        raise ValueError("no label columns given")
    return pairs


def _split_item(item: str) -> tuple[str, str]:
    name, sep, column = str(item).partition("=")
    return (name.strip(), column.strip()) if sep else (item.strip(), item.strip())


# --------------------------------------------------------------------------- where
@dataclass
class _Value:
    """A value during evaluation: data, which entries are unknown, and its kind."""

    data: Any
    unknown: Any
    kind: str  # "num", "int", "str" or "bool"


_COMPARE = {ast.Eq: np.equal, ast.NotEq: np.not_equal, ast.Lt: np.less,
            ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal}
_ARITH = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
          ast.Div: np.true_divide}
_SYMBOL = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
           ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in", ast.Add: "+", ast.Sub: "-",
           ast.Mult: "*", ast.Div: "/", ast.BitAnd: "&", ast.BitOr: "|"}
_FORBIDDEN = {ast.Call: "function calls", ast.Attribute: "attribute access ('.')",
              ast.Subscript: "indexing ('[...]')", ast.Lambda: "lambda",
              ast.IfExp: "'... if ... else ...'", ast.NamedExpr: "':='",
              ast.Starred: "'*'", ast.Dict: "dicts", ast.ListComp: "comprehensions",
              ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
              ast.GeneratorExp: "comprehensions", ast.JoinedStr: "f-strings",
              ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
              ast.Pow: "'**'", ast.Mod: "'%'", ast.FloorDiv: "'//'", ast.BitXor: "'^'",
              ast.LShift: "'<<'", ast.RShift: "'>>'", ast.MatMult: "'@'",
              ast.Invert: "'~'", ast.Is: "'is'", ast.IsNot: "'is not'"}


class WhereExpression:
    """A parsed ``where`` expression (see :func:`parse_where`).

    Attributes
    ----------
    text : str
        The expression as given.
    names : list of str
        The column names it uses, as written (back-quoted ones without the quotes).
    """

    def __init__(self, text: str, tree: ast.Expression, names: list[str],
                 quoted: dict[str, str]) -> None:
        self.text = text
        self._tree = tree
        self._quoted = quoted
        self.names = names

    def __repr__(self) -> str:
        return f"WhereExpression({self.text!r})"

    def evaluate(self, columns: Mapping[str, Any], n_rows: int | None = None) -> np.ndarray:
        """The rows the expression selects, a bool array (n_rows,).

        Parameters
        ----------
        columns : mapping of name -> array (n_rows,)
            One array per name of :attr:`names` (a masked array marks missing values;
            NaN and float values <= -9999 are missing too).
        n_rows : int, optional
            The number of rows, for an expression that names no column (``True``).

        A comparison with a missing value is neither true nor false (SQL's three-valued
        logic): such a row is never selected, also not under ``not``.
        """
        lengths = {len(np.asarray(columns[n])) for n in self.names}
        if len(lengths) > 1:
            raise ValueError(f"where: columns of different lengths {sorted(lengths)}")
        n = lengths.pop() if lengths else n_rows
        value = self._eval(self._tree.body, columns)
        if value.kind != "bool":
            raise WhereError(f"where {self.text!r}: the expression gives "
                             f"{_KIND_NAMES[value.kind]}, not true/false; compare it, e.g. "
                             "'(EXTRATARG & 16) == 0' or 'SNR > 50'")
        selected = np.asarray(value.data, dtype=bool) & ~np.asarray(value.unknown, dtype=bool)
        return np.broadcast_to(selected, (n,)).copy() if n is not None else selected

    # -- evaluation of the whitelisted nodes
    def _error(self, what: str) -> WhereError:
        return WhereError(f"where {self.text!r}: {what}")

    def _eval(self, node: ast.AST, columns: Mapping[str, Any]) -> _Value:
        if isinstance(node, ast.Constant):
            return _constant(node.value)
        if isinstance(node, ast.Name):
            name = self._quoted.get(node.id, node.id)
            return _column_value(columns[name])
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, columns)
            if isinstance(node.op, ast.Not):
                self._need(operand, "bool", "not")
                return _Value(~np.asarray(operand.data, dtype=bool), operand.unknown, "bool")
            self._need(operand, "num", "-" if isinstance(node.op, ast.USub) else "+")
            data = -operand.data if isinstance(node.op, ast.USub) else operand.data
            return _Value(data, operand.unknown, operand.kind)
        if isinstance(node, ast.BoolOp):
            values = [self._eval(v, columns) for v in node.values]
            word = "and" if isinstance(node.op, ast.And) else "or"
            for v in values:
                self._need(v, "bool", word)
            out = values[0]
            for v in values[1:]:
                out = _kleene(out, v, word)
            return out
        if isinstance(node, ast.BinOp):
            return self._binop(node, columns)
        if isinstance(node, ast.Compare):
            return self._compare(node, columns)
        raise self._error(f"{type(node).__name__} is not allowed")  # unreachable: checked

    def _need(self, value: _Value, kind: str, op: str) -> None:
        ok = (value.kind == "bool" if kind == "bool"
              else value.kind in ("num", "int") if kind == "num"
              else value.kind in ("int", "bool"))
        if not ok:
            wanted = {"bool": "comparisons (true/false)", "num": "numbers",
                      "int": "integers (bit flags)"}[kind]
            hint = (" (write e.g. 'ASPCAPFLAG == 0 and SNR > 50')" if kind == "bool"
                    else "")
            raise self._error(f"'{op}' needs {wanted}, got {_KIND_NAMES[value.kind]}{hint}")

    def _binop(self, node: ast.BinOp, columns: Mapping[str, Any]) -> _Value:
        left, right = self._eval(node.left, columns), self._eval(node.right, columns)
        op = type(node.op)
        if op in (ast.BitAnd, ast.BitOr):
            if left.kind == "bool" and right.kind == "bool":  # (a > 1) & (b < 2)
                return _kleene(left, right, "and" if op is ast.BitAnd else "or")
            self._need(left, "int", _SYMBOL[op])
            self._need(right, "int", _SYMBOL[op])
            fn = np.bitwise_and if op is ast.BitAnd else np.bitwise_or
            return _Value(fn(np.asarray(left.data, dtype=np.int64),
                             np.asarray(right.data, dtype=np.int64)),
                          left.unknown | right.unknown, "int")
        self._need(left, "num", _SYMBOL[op])
        self._need(right, "num", _SYMBOL[op])
        with np.errstate(all="ignore"):
            data = _ARITH[op](left.data, right.data)
        unknown = left.unknown | right.unknown | ~np.isfinite(data)
        kind = "int" if left.kind == right.kind == "int" and op is not ast.Div else "num"
        return _Value(data, unknown, kind)

    def _compare(self, node: ast.Compare, columns: Mapping[str, Any]) -> _Value:
        out: _Value | None = None
        left = self._eval(node.left, columns)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)):
                result = self._membership(left, right_node, columns, isinstance(op, ast.NotIn))
                right = left
            else:
                right = self._eval(right_node, columns)
                result = self._compare_pair(left, right, type(op))
            out = result if out is None else _kleene(out, result, "and")
            left = right
        assert out is not None
        return out

    def _compare_pair(self, left: _Value, right: _Value, op: type) -> _Value:
        text = "str" in (left.kind, right.kind)
        if text and not left.kind == right.kind == "str":
            raise self._error(f"'{_SYMBOL[op]}' compares text with "
                              f"{_KIND_NAMES[right.kind if left.kind == 'str' else left.kind]}"
                              " (quote the text: TELESCOPE == 'apo25m')")
        if text and op not in (ast.Eq, ast.NotEq):
            raise self._error(f"'{_SYMBOL[op]}' orders text; text can only be compared "
                              "with == , != or in")
        data = _COMPARE[op](left.data, right.data)
        return _Value(np.asarray(data, dtype=bool), left.unknown | right.unknown, "bool")

    def _membership(self, left: _Value, node: ast.AST, columns: Mapping[str, Any],
                    negate: bool) -> _Value:
        if not isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            raise self._error("'in' needs a list of values: TELESCOPE in ('apo25m', "
                              "'lco25m')")
        items = [self._eval(e, columns) for e in node.elts]
        if any(np.ndim(v.data) for v in items):
            raise self._error("'in' needs a list of constant values, not columns")
        kinds = {"str" if v.kind == "str" else "num" for v in items}
        mine = "str" if left.kind == "str" else "num"
        if items and kinds != {mine}:
            raise self._error(f"'in' compares {_KIND_NAMES[left.kind]} with a list of "
                              f"{' and '.join(sorted(_KIND_NAMES[k] for k in kinds))}")
        found = np.isin(left.data, [v.data for v in items])
        return _Value(~found if negate else found, left.unknown, "bool")


_KIND_NAMES = {"num": "numbers", "int": "integers", "str": "text", "bool": "true/false"}


def _constant(value: Any) -> _Value:
    if isinstance(value, bool):
        return _Value(np.bool_(value), np.False_, "bool")
    if isinstance(value, int):
        return _Value(np.int64(value), np.False_, "int")
    if isinstance(value, float):
        return _Value(np.float64(value), np.bool_(not np.isfinite(value)), "num")
    if isinstance(value, str):
        return _Value(np.str_(value.strip()), np.False_, "str")
    raise WhereError(f"where: the constant {value!r} is not a number, text or True/False")


def _column_value(column: Any) -> _Value:
    data, unknown = _clean(column)
    kind = data.dtype.kind
    if kind == "b":
        return _Value(data, unknown, "bool")
    if kind in "iu":
        return _Value(data, unknown, "int")
    if kind == "f":
        return _Value(data, unknown | (data <= MISSING_BELOW), "num")
    return _Value(data, unknown, "str")


def _kleene(a: _Value, b: _Value, word: str) -> _Value:
    """``a and b`` / ``a or b`` in three-valued logic (unknown where it cannot be told)."""
    a_true, a_false = a.data & ~a.unknown, ~a.data & ~a.unknown
    b_true, b_false = b.data & ~b.unknown, ~b.data & ~b.unknown
    if word == "and":
        true, false = a_true & b_true, a_false | b_false
    else:
        true, false = a_true | b_true, a_false & b_false
    return _Value(true, ~(true | false), "bool")


_ALLOWED = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
            ast.UAdd, ast.BinOp, ast.BitAnd, ast.BitOr, ast.Add, ast.Sub, ast.Mult, ast.Div,
            ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In,
            ast.NotIn, ast.Name, ast.Load, ast.Constant, ast.Tuple, ast.List, ast.Set)


def parse_where(text: str) -> WhereExpression:
    """Parse a row-selection expression over catalogue columns.

    The language: column names (matched like label columns, case-insensitively; a name
    that is not a Python identifier, or is a keyword such as LAMOST's ``class``, goes in
    back quotes: ```class` == 'STAR'``, ```[Fe/H]` > -1``), numbers, quoted text,
    ``True``/``False``; comparisons ``== != < <= > >=`` (chains like ``4000 < TEFF <
    7000`` too), ``in`` / ``not in`` a list of constants; ``and``, ``or``, ``not`` and
    parentheses; ``&`` and ``|`` as bit tests on integer flags (``EXTRATARG & 16 == 0``:
    ``&`` binds tighter than ``==``, as in Python) or as and/or between comparisons;
    ``+ - * /``. Nothing else: no calls, attributes, indexing, ``**``. The text is parsed
    with :func:`ast.parse` and only those nodes are evaluated; it is never executed.

    Parameters
    ----------
    text : str

    Returns
    -------
    WhereExpression

    Raises
    ------
    WhereError
        A syntax error or a construct that is not allowed, named.

    Examples
    --------
    >>> import numpy as np
    >>> expr = parse_where("ASPCAPFLAG == 0 and SNR > 50")
    >>> expr.names
    ['ASPCAPFLAG', 'SNR']
    >>> expr.evaluate({"ASPCAPFLAG": np.array([0, 0, 4]),
    ...                "SNR": np.array([80.0, 20.0, 90.0])}).tolist()
    [True, False, False]
    >>> parse_where("__import__('os')")
    Traceback (most recent call last):
    ...
    starlearn.io.catalogue.WhereError: where "__import__('os')": function calls are not allowed
    """
    text = str(text)
    if len(text) > _MAX_WHERE:
        raise WhereError(f"where: the expression is {len(text)} characters long (at most "
                         f"{_MAX_WHERE})")
    source, quoted = _replace_quoted_names(text)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as err:
        raise WhereError(f"where {text!r}: not a valid expression ({err.msg}"
                         + (f" at column {err.offset}" if err.offset else "") + ")") from None
    except (RecursionError, MemoryError, ValueError):
        raise WhereError(f"where {text!r}: the expression cannot be parsed (nested too "
                         "deeply, or a null character)") from None
    names: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            what = _FORBIDDEN.get(type(node), type(node).__name__)
            raise WhereError(f"where {text!r}: {what} {'is' if what[-1] != 's' else 'are'} "
                             "not allowed")
        if isinstance(node, ast.Name):
            name = quoted.get(node.id, node.id)
            if name not in names:
                names.append(name)
        if isinstance(node, ast.Constant) and not isinstance(node.value,
                                                              (bool, int, float, str)):
            raise WhereError(f"where {text!r}: the constant {node.value!r} is not a number, "
                             "text or True/False")
    return WhereExpression(text, tree, names, quoted)


def _replace_quoted_names(text: str) -> tuple[str, dict[str, str]]:
    """Replace each `back-quoted name` (outside string literals) by a placeholder."""
    out: list[str] = []
    quoted: dict[str, str] = {}
    i, quote = 0, ""
    while i < len(text):
        ch = text[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise WhereError(f"where {text!r}: a back quote (`) is not closed")
            key = f"_sl_quoted_{len(quoted)}"
            quoted[key] = text[i + 1:end]
            out.append(f" {key} ")
            i = end
        else:
            out.append(ch)
        i += 1
    return "".join(out), quoted


# --------------------------------------------------------------------------- sources
def _clean(column: Any) -> tuple[np.ndarray, np.ndarray]:
    """(data, missing) from a column: masked entries missing; text decoded and stripped;
    NaN missing; native byte order."""
    missing = np.zeros(len(column), dtype=bool)
    if np.ma.isMaskedArray(column):
        missing = np.ma.getmaskarray(column).copy()
        column = column.data
    data = np.asarray(column)
    if data.ndim != 1:
        raise ValueError(f"holds arrays of shape {data.shape[1:]} per row")
    if data.dtype.kind == "S":
        data = np.char.decode(data, "utf-8", errors="replace")
    if data.dtype.kind == "O":
        missing |= np.array([x is None for x in data], dtype=bool)
        data = np.array(["" if x is None else
                         x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)
                         for x in data], dtype=str)
    if data.dtype.kind == "U":
        data = np.char.strip(data)
    elif data.dtype.kind == "f":
        missing |= np.isnan(data)
    if not data.dtype.isnative:
        data = data.astype(data.dtype.newbyteorder("="))
    return data, missing


class _Source:
    """Column access to a catalogue: ``names``, ``n_rows``, ``read(name, rows)``."""

    names: list[str]
    n_rows: int

    def read(self, name: str, rows: np.ndarray | None) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


class _FitsSource(_Source):
    """The first table HDU of a FITS file, read column by column with fitsio."""

    def __init__(self, path: str) -> None:
        import fitsio

        self._fits = fitsio.FITS(path)
        try:
            self._hdu = next(h for h in self._fits
                             if h.get_exttype() in ("BINARY_TBL", "ASCII_TBL"))
        except StopIteration:
            self._fits.close()
            raise ValueError("no table HDU") from None
        self.names = list(self._hdu.get_colnames())
        self.n_rows = int(self._hdu.get_nrows())
        dtype = self._hdu.get_rec_dtype()[0]
        self._shapes = {n: dtype[n].shape for n in dtype.names}

    def read(self, name: str, rows: np.ndarray | None) -> Any:
        if self._shapes.get(name):
            raise ValueError(f"holds arrays of shape {self._shapes[name]} per row")
        if rows is not None and len(rows) == 0:
            return self._hdu.read_column(name, rows=[0])[:0] if self.n_rows else np.zeros(0)
        return self._hdu.read_column(name, rows=rows)

    def close(self) -> None:
        self._fits.close()


class _AstropyFitsSource(_Source):
    """The first table HDU of a FITS file, read column by column with astropy from the
    memory-mapped file (where fitsio, ``starlearn[fitsio]``, is not installed): only the
    pages of the columns read are touched, and each column read is copied out."""

    def __init__(self, path: str) -> None:
        from astropy.io import fits

        self._hdul = fits.open(path, memmap=True)
        try:
            self._hdu = next(h for h in self._hdul
                             if isinstance(h, (fits.BinTableHDU, fits.TableHDU)))
        except StopIteration:
            self._hdul.close()
            raise ValueError("no table HDU") from None
        self.names = list(self._hdu.columns.names)
        self.n_rows = int(self._hdu.header.get("NAXIS2", 0))

    def read(self, name: str, rows: np.ndarray | None) -> Any:
        data = self._hdu.data
        shape = () if data is None else data.dtype[name].shape
        if shape:
            raise ValueError(f"holds arrays of shape {shape} per row")
        if data is None:
            return np.zeros(0)
        column = data.field(name)
        return np.array(column if rows is None else column[rows])

    def close(self) -> None:
        self._hdul.close()


class _ParquetSource(_Source):
    """A Parquet file, read column by column with pyarrow."""

    def __init__(self, path: str) -> None:
        import pyarrow.parquet as pq

        self._file = pq.ParquetFile(path)
        self.names = list(self._file.schema_arrow.names)
        self.n_rows = int(self._file.metadata.num_rows)

    def read(self, name: str, rows: np.ndarray | None) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        column = self._file.read(columns=[name]).column(0).combine_chunks()
        kind = column.type
        if pa.types.is_list(kind) or pa.types.is_large_list(kind) or \
                pa.types.is_fixed_size_list(kind):
            raise ValueError("holds lists per row")
        missing = column.is_null().to_numpy(zero_copy_only=False)
        if column.null_count:
            fill = ("" if pa.types.is_string(kind) or pa.types.is_large_string(kind)
                    else False if pa.types.is_boolean(kind) else 0)
            column = pc.fill_null(column, pa.scalar(fill, type=kind))
        data = column.to_numpy(zero_copy_only=False)
        if rows is not None:
            data, missing = data[rows], missing[rows]
        return np.ma.masked_array(data, mask=missing) if missing.any() else data


class _TableSource(_Source):
    """Any table astropy reads. CSV is read with only the needed columns
    (``include_names``); other formats are read whole once (ECSV too: astropy 8 fails to
    read a masked ECSV column alone with ``include_names``)."""

    def __init__(self, path: str, fmt: str | None) -> None:
        from astropy.table import Table

        self._path, self._fmt = path, fmt
        if fmt == "ascii.csv":
            self.names = list(Table.read(path, format=fmt, data_end=0).colnames)
            self._table = None
        else:
            self._table = Table.read(path, format=fmt)
            self.names = list(self._table.colnames)
        self.n_rows = -1 if self._table is None else len(self._table)
        self._cache: dict[str, Any] = {}

    def load(self, names: Sequence[str]) -> None:
        """Read the text columns ``names`` in one pass (the others are never kept)."""
        if self._table is not None:
            return
        from astropy.table import Table

        todo = [n for n in names if n not in self._cache]
        if todo:
            table = Table.read(self._path, format=self._fmt, include_names=todo)
            for n in todo:
                self._cache[n] = table[n]
            self.n_rows = len(table)

    def read(self, name: str, rows: np.ndarray | None) -> Any:
        if self._table is not None:
            column = self._table[name]
        else:
            self.load([name])
            column = self._cache[name]
        data = np.ma.asarray(column) if hasattr(column, "mask") else np.asarray(column)
        return data if rows is None else data[rows]


def _open(path: str) -> _Source:
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return _ParquetSource(path)
    with open(path, "rb") as f:
        head = f.read(9)
    gzipped_fits = head[:2] == b"\x1f\x8b" and lower.endswith((".fits.gz", ".fit.gz",
                                                                ".fts.gz"))
    if head.startswith(b"SIMPLE  =") or gzipped_fits or lower.endswith((".fits", ".fit",
                                                                        ".fts")):
        try:
            import fitsio  # noqa: F401 (an accelerator: astropy reads the same tables)
        except ImportError:
            return _AstropyFitsSource(path)
        return _FitsSource(path)
    if lower.endswith(".csv"):
        return _TableSource(path, "ascii.csv")
    if lower.endswith(".ecsv"):
        return _TableSource(path, "ascii.ecsv")
    return _TableSource(path, None)


# --------------------------------------------------------------------------- the catalogue
@dataclass
class LabelCatalogue:
    """Labels by identifier: one row per identifier after ``where`` and duplicate
    resolution.

    Attributes
    ----------
    path : str
    id_column : str
        The catalogue's identifier column (as the file spells it).
    label_names : list of str
        Output label names, lower-case identifiers (``teff``, ``fe_h``).
    label_columns : list of str
        The catalogue column of each label.
    error_columns : dict of label name -> catalogue column
        The uncertainty column found for a label (``teff`` -> ``TEFF_ERR``); labels
        without one are absent.
    ids : array of str, (n_ids,)
        Identifiers, stripped text, in file order.
    values : float64 array, (n_ids, n_labels)
        Labels; NaN where missing (masked, non-finite, <= -9999).
    errors : float64 array, (n_ids, n_labels)
        One-sigma uncertainties in the labels' units (as the catalogue gives them); NaN
        where missing, negative, or the label has no error column.
    n_rows : int
        Rows in the file.
    n_selected : int
        Rows kept by ``where`` with a non-blank identifier.
    where : str or None
    duplicates : str
        The rule applied (:data:`DUPLICATE_RULES`).
    duplicated_ids : list of str
        Identifiers that were on several rows (after ``where``), in file order.
    n_duplicate_rows : int
        Rows dropped because another row of the same identifier was kept.
    ranked_by : list of str
        For ``best``: what ranked the rows (e.g. ``["EXTRATARG bit 4 (DUPLICATE) unset",
        "highest SNR"]``).
    decided_by : dict of str -> int
        For ``best``: how many duplicated identifiers each criterion decided
        (``"flag"``, ``"snr"``, ``"file order"``).
    columns_read : list of str
        The catalogue columns that were read (all others were not touched).
    """

    path: str
    id_column: str
    label_names: list[str]
    label_columns: list[str]
    error_columns: dict[str, str]
    ids: np.ndarray
    values: np.ndarray
    errors: np.ndarray
    n_rows: int
    n_selected: int
    where: str | None = None
    duplicates: str = "best"
    duplicated_ids: list[str] = field(default_factory=list)
    n_duplicate_rows: int = 0
    ranked_by: list[str] = field(default_factory=list)
    decided_by: dict[str, int] = field(default_factory=dict)
    columns_read: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._index = {ident: i for i, ident in enumerate(self.ids)}
        self._duplicated = set(self.duplicated_ids)

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, ident: str) -> int | None:
        """Row of identifier ``ident`` (stripped text), or None."""
        return self._index.get(ident)

    def was_duplicated(self, ident: str) -> bool:
        """Whether ``ident`` was on several catalogue rows (resolved by the rule)."""
        return ident in self._duplicated

    @property
    def error_names(self) -> list[str]:
        """Meta column names of the uncertainties: ``<label>_err`` for each label."""
        return [f"{name}_err" for name in self.label_names]

    def as_dict(self) -> dict[str, np.ndarray]:
        """Labels by identifier: id -> float array (n_labels,)."""
        return dict(zip(self.ids.tolist(), self.values, strict=True))

    def summary_lines(self) -> list[str]:
        """What was read and how duplicates were resolved, for a run's summary."""
        name = os.path.basename(self.path)
        lines = [f"catalogue {name}: {self.n_rows} rows"
                 + (f", {self.n_selected} kept by where {self.where!r}" if self.where else "")
                 + f"; {len(self)} identifiers; labels "
                 + ", ".join(f"{n} ({c})" for n, c in zip(self.label_names,
                                                          self.label_columns, strict=True))]
        if self.error_columns:
            lines.append("uncertainties joined as meta: " + ", ".join(
                f"{n}_err ({c})" for n, c in self.error_columns.items()))
        if not self.duplicated_ids:
            lines.append("no duplicated identifiers")
            return lines
        how = {"first": "the first row in file order",
               "best": "the best row: " + ", then ".join([*self.ranked_by, "file order"])}
        text = (f"{len(self.duplicated_ids)} identifiers on several rows "
                f"({self.n_duplicate_rows} rows dropped), resolved by "
                f"'{self.duplicates}' ({how.get(self.duplicates, self.duplicates)})")
        if self.decided_by:
            text += "; decided by " + ", ".join(f"{k}: {v}" for k, v in
                                               self.decided_by.items() if v)
        lines.append(text)
        return lines


def read_label_catalogue(path: str | os.PathLike, *, id_column: str,
                         label_columns: Sequence[str] | Mapping[str, str] | str,
                         where: str | WhereExpression | None = None,
                         duplicates: str = "best", errors: bool = True) -> LabelCatalogue:
    """Read the labels of a catalogue, one row per identifier, reading only what is needed.

    Parameters
    ----------
    path : path-like
        FITS (first table HDU; ``.fits.gz`` too), Parquet or CSV catalogue, read lazily;
        ECSV and other formats astropy's ``Table.read`` knows are read whole.
    id_column : str
        The identifier column (matched case-insensitively). Identifiers are compared as
        stripped text; rows with a blank identifier are dropped.
    label_columns : str, sequence or mapping
        See :func:`parse_label_columns`: ``"TEFF,LOGG"``, ``["teff=TEFF"]``,
        ``{"teff": "TEFF"}``.
    where : str, optional
        Keep only the rows this expression selects (:func:`parse_where`), before
        duplicates are looked for.
    duplicates : {"best", "first", "refuse"}
        What to do with an identifier on several rows (:data:`DUPLICATE_RULES`).
    errors : bool
        Join each label's uncertainty column when the catalogue has one
        (:data:`ERROR_PATTERNS`: ``<col>_ERR``, ``<col>_error``, ``E_<col>``, ``ERR_<col>``,
        any case).

    Returns
    -------
    LabelCatalogue

    Raises
    ------
    CatalogueError
        The file cannot be read as a table, or a named column is missing, ambiguous or
        not a column of numbers (labels) / of scalars.
    DuplicateIdError
        Duplicated identifiers under ``"refuse"`` (or ``"best"`` with nothing to rank
        by); the message lists up to 10 of them.
    WhereError
        A bad ``where`` expression.

    Examples
    --------
    >>> import tempfile, os
    >>> from astropy.table import Table
    >>> t = Table({"APOGEE_ID": ["a", "b", "a"], "TEFF": [4800.0, 5200.0, 9999.0],
    ...            "TEFF_ERR": [50.0, 60.0, 500.0], "EXTRATARG": [0, 0, 16],
    ...            "SNR": [90.0, 80.0, 200.0]})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = os.path.join(tmp, "allStar.fits")
    ...     t.write(p)
    ...     cat = read_label_catalogue(p, id_column="apogee_id", label_columns="TEFF")
    >>> cat.label_names, cat.ids.tolist(), cat.values[:, 0].tolist()
    (['teff'], ['a', 'b'], [4800.0, 5200.0])
    >>> cat.error_columns, cat.duplicated_ids, cat.ranked_by
    ({'teff': 'TEFF_ERR'}, ['a'], ['EXTRATARG bit 4 (DUPLICATE) unset', 'highest SNR'])
    """
    path = os.fspath(path)
    if duplicates not in DUPLICATE_RULES:
        raise ValueError(f"duplicates must be one of {', '.join(DUPLICATE_RULES)}; got "
                         f"{duplicates!r}")
    pairs = parse_label_columns(label_columns)
    expr = parse_where(where) if isinstance(where, str) else where
    if not os.path.exists(path):
        from starlearn.io.fitsutil import FileMissingError

        raise FileMissingError(path)
    try:
        source = _open(path)
    except Exception as err:
        what = " ".join(str(err).split())  # cfitsio's messages span lines
        raise CatalogueError(path, f"cannot read the label catalogue ({what})") from None
    try:
        return _read(source, path, id_column, pairs, expr, duplicates, errors)
    finally:
        source.close()


def _read(source: _Source, path: str, id_column: str, pairs: list[tuple[str, str]],
          expr: WhereExpression | None, duplicates: str, errors: bool) -> LabelCatalogue:
    names = source.names

    def find(name: str, what: str) -> str:
        try:
            found = _resolve(name, names)
        except ValueError as err:
            raise CatalogueError(path, f"{what}: {err}") from None
        if found is None:
            raise CatalogueError(path, _unknown_column(name, names, what))
        return found

    id_col = find(id_column, "the id column")
    label_cols = [find(col, f"label '{label}'") for label, col in pairs]
    where_cols = {n: find(n, f"where {expr.text!r}") for n in expr.names} if expr else {}
    error_cols: dict[str, str] = {}
    if errors:
        for (label, _), col in zip(pairs, label_cols, strict=True):
            found = _error_column(col, label, names, exclude=set(label_cols) | {id_col})
            if found is not None:
                error_cols[label] = found
    read_cols: list[str] = []

    def read(name: str, rows: np.ndarray | None, what: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in read_cols:
            read_cols.append(name)
        try:
            return _clean(source.read(name, rows))
        except ValueError as err:
            raise CatalogueError(path, f"{what} column '{name}' {err}") from None
        except Exception as err:
            raise CatalogueError(path, f"cannot read column '{name}' ({err})") from None

    if isinstance(source, _TableSource):  # one pass over a text file for these
        source.load([*where_cols.values(), id_col])
    rows: np.ndarray | None = None
    if expr is not None:
        columns = {}
        for written, actual in where_cols.items():
            data, missing = read(actual, None, "the where")
            columns[written] = np.ma.masked_array(data, mask=missing)
        rows = np.flatnonzero(expr.evaluate(columns, n_rows=max(source.n_rows, 0)))
    n_rows = source.n_rows
    ids, blank = read(id_col, rows, "the id")
    ids = np.char.strip(ids.astype(str))
    rows = np.arange(len(ids)) if rows is None else rows
    n_rows = n_rows if n_rows >= 0 else len(ids)
    keep = ~blank & (ids != "")
    rows, ids = rows[keep], ids[keep]

    chosen, info = _resolve_duplicates(ids, rows, duplicates, path, names,
                                       lambda name, r: read(name, r, "the ranking"))
    rows, ids = rows[chosen], ids[chosen]
    if isinstance(source, _TableSource):
        source.load([*label_cols, *error_cols.values()])
    values = np.full((len(rows), len(pairs)), np.nan)
    errs = np.full((len(rows), len(pairs)), np.nan)
    for j, ((label, _), col) in enumerate(zip(pairs, label_cols, strict=True)):
        values[:, j] = _numbers(read(col, rows, f"label '{label}':"), path, col)
        if label in error_cols:
            e = _numbers(read(error_cols[label], rows, f"error of '{label}':"), path,
                         error_cols[label])
            e[e < 0] = np.nan
            errs[:, j] = e
    return LabelCatalogue(path=path, id_column=id_col, label_names=[p[0] for p in pairs],
                          label_columns=label_cols, error_columns=error_cols, ids=ids,
                          values=values, errors=errs, n_rows=n_rows,
                          n_selected=int(keep.sum()),
                          where=expr.text if expr is not None else None,
                          duplicates=duplicates, columns_read=read_cols, **info)


def _error_column(column: str, label: str, names: Sequence[str],
                  exclude: set[str]) -> str | None:
    """The uncertainty column of ``column`` (or of the label name), if the catalogue has
    exactly one candidate."""
    by_norm: dict[str, list[str]] = {}
    for n in names:
        key = _safe(normalise_name, n)
        if key is not None and n not in exclude:
            by_norm.setdefault(key, []).append(n)
    for base in dict.fromkeys((normalise_name(column), label)):
        for pattern in ERROR_PATTERNS:
            found = by_norm.get(pattern.format(base), [])
            if len(found) == 1:
                return found[0]
    return None


def _numbers(column: tuple[np.ndarray, np.ndarray], path: str, name: str) -> np.ndarray:
    data, missing = column
    if data.dtype.kind not in "biuf":
        kind = "text" if data.dtype.kind == "U" else str(data.dtype)
        raise CatalogueError(path, f"column '{name}' holds {kind}, not numbers")
    out = data.astype(np.float64)
    out[missing | ~np.isfinite(out) | (out <= MISSING_BELOW)] = np.nan
    return out


def _resolve_duplicates(ids: np.ndarray, rows: np.ndarray, rule: str, path: str,
                        names: Sequence[str],
                        read: Callable[[str, np.ndarray], tuple[np.ndarray, np.ndarray]]
                        ) -> tuple[np.ndarray, dict[str, Any]]:
    """Positions (into ``ids``) of the rows kept, and what the summary says about it."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64), {}
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    sizes = np.diff(np.r_[starts, len(ids)])
    if not np.any(sizes > 1):
        return np.arange(len(ids)), {}
    groups = [order[s:s + k] for s, k in zip(starts, sizes, strict=True) if k > 1]
    groups.sort(key=lambda g: g[0])  # file order of first appearance
    duplicated = [str(ids[g[0]]) for g in groups]
    info: dict[str, Any] = {"duplicated_ids": duplicated,
                            "n_duplicate_rows": int(sum(len(g) - 1 for g in groups))}
    flag = next(((col, text, test) for key, text, test in PRIMARY_FLAGS
                 if (col := _find_normalised(key, names)) is not None), None)
    snr = next((col for key in SNR_COLUMNS if (col := _find_normalised(key, names))
                is not None), None)
    if rule == "refuse" or (rule == "best" and flag is None and snr is None):
        listed = ", ".join(f"{ids[g[0]]} ({len(g)} rows)" for g in groups[:_MAX_LISTED])
        more = (f", ... and {len(groups) - _MAX_LISTED} more" if len(groups) > _MAX_LISTED
                else "")
        why = ("" if rule == "refuse" else
               "; 'best' has nothing to rank them by (no primary flag: "
               + ", ".join(k.upper() for k, _, _ in PRIMARY_FLAGS) + "; no S/N column: "
               + ", ".join(k.upper() for k in SNR_COLUMNS) + ")")
        raise DuplicateIdError(path, f"{len(groups)} identifiers are on more than one row "
                               f"({info['n_duplicate_rows'] + len(groups)} rows): "
                               f"{listed}{more}{why}; choose a rule with duplicates='first' or "
                               "'best' (--duplicates), or select rows with where (--where)",
                               duplicated)
    keep = np.ones(len(ids), dtype=bool)
    dup_pos = np.sort(np.concatenate(groups))
    for g in groups:
        keep[g] = False
    if rule == "first":
        for g in groups:
            keep[g.min()] = True
        return np.flatnonzero(keep), info
    # best: read the ranking columns of the duplicated rows only
    primary = np.zeros(len(ids), dtype=bool)
    signal = np.full(len(ids), -np.inf)
    ranked_by = []
    if flag is not None:
        data, missing = read(flag[0], rows[dup_pos])
        if data.dtype.kind not in "biuf":
            raise CatalogueError(path, f"the primary flag '{flag[0]}' is not numeric")
        with np.errstate(invalid="ignore"):
            good = np.asarray(flag[2](np.where(missing, 0, data)), dtype=bool)
        primary[dup_pos] = good & ~missing
        ranked_by.append(flag[1])
    if snr is not None:
        data, missing = read(snr, rows[dup_pos])
        if data.dtype.kind in "biuf":
            values = data.astype(np.float64)
            values[missing | ~np.isfinite(values) | (values <= MISSING_BELOW)] = -np.inf
            signal[dup_pos] = values
            ranked_by.append(f"highest {snr}")
    decided = {"flag": 0, "snr": 0, "file order": 0}
    for g in groups:
        candidates = g[primary[g]] if flag is not None and primary[g].any() else g
        if flag is not None and primary[g].sum() == 1:
            decided["flag"] += 1
            keep[candidates[0]] = True
            continue
        best = signal[candidates].max()
        top = np.sort(candidates[signal[candidates] == best])
        decided["snr" if len(top) == 1 and np.isfinite(best) else "file order"] += 1
        keep[top[0]] = True
    info.update(ranked_by=ranked_by, decided_by=decided)
    return np.flatnonzero(keep), info


def _find_normalised(key: str, names: Sequence[str]) -> str | None:
    found = [n for n in names if _safe(normalise_name, n) == key]
    return found[0] if len(found) == 1 else None
