/*
 * qlex.c -- query lexer (see qlex.h).
 *
 * Invariant: a token never spans beyond len, and every byte of the text is
 * either whitespace or inside exactly one token, so the error position of
 * any unlexable byte is exact.  The text is known to be valid UTF-8 (the
 * parser checks it first); non-ASCII bytes may appear only inside strings.
 */
#include "qlex.h"

#include "format/qt_assert.h"
#include "format/qt_err.h"
#include "format/qt_limits.h"

#include <string.h>

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
lex_fail(size_t *err_pos, size_t pos, const char *why)
{
    *err_pos = pos;
    return qt_fail(QT_ESYNTAX, why);
}

/* A string: '"' ... '"'; end is one past the closing quote. */
static int
lex_string(const char *text, size_t len, size_t pos, size_t *end, size_t *err_pos)
{
    size_t p = pos + 1;
    while (p < len) {
        unsigned char c = (unsigned char)text[p];
        if (c == '"') {
            *end = p + 1;
            return 0;
        }
        if (c < 0x20 || c == 0x7f)
            return lex_fail(err_pos, p, "control character in a string (write it differently)");
        if (c == '\\' && p + 1 < len && (text[p + 1] == '"' || text[p + 1] == '\\'))
            p++;
        p++;
    }
    return lex_fail(err_pos, pos, "unterminated string: missing closing '\"'");
}

/* Digits [. digits] [e [+-] digits]: end of the number at *end. */
static int
lex_number(const char *text, size_t len, size_t pos, size_t *end, size_t *err_pos)
{
    size_t p = pos;
    while (p < len && is_digit(text[p]))
        p++;
    if (p + 1 < len && text[p] == '.' && is_digit(text[p + 1])) {
        p++;
        while (p < len && is_digit(text[p]))
            p++;
    }
    if (p < len && (text[p] == 'e' || text[p] == 'E')) {
        size_t q = p + 1;
        if (q < len && (text[q] == '+' || text[q] == '-'))
            q++;
        if (q < len && is_digit(text[q])) {
            p = q;
            while (p < len && is_digit(text[p]))
                p++;
        }
    }
    if (p < len && is_alpha(text[p]))
        return lex_fail(err_pos, p, "unexpected letter after a number (durations are whole: 90m)");
    if (p < len && text[p] == '.')
        return lex_fail(err_pos, p, "unexpected '.' after a number");
    if (p - pos > QT_QUERY_NUMBER_MAX)
        return lex_fail(err_pos, pos, "number literal too long");
    *end = p;
    return 0;
}

/* A token that starts with a digit: number, unit number or RFC 3339 time. */
static int
lex_digits(const char *text, size_t len, size_t pos, struct qt_tok *tok, size_t *err_pos)
{
    size_t p = pos;
    while (p < len && is_digit(text[p]))
        p++;
    if (p - pos == 4 && p + 1 < len && text[p] == '-' && is_digit(text[p + 1])) {
        /* RFC 3339: take every character a date-time can contain. */
        while (p < len && (is_digit(text[p]) || is_alpha(text[p]) || text[p] == '-' ||
                           text[p] == ':' || text[p] == '.' || text[p] == '+'))
            p++;
        tok->kind = QT_TOK_TIME;
    } else if (p < len && is_alpha(text[p]) && text[p] != 'e' && text[p] != 'E') {
        while (p < len && (is_alpha(text[p]) || is_digit(text[p])))
            p++;
        tok->kind = QT_TOK_UNITNUM;
    } else {
        int rc = lex_number(text, len, pos, &p, err_pos);
        if (rc != 0)
            return rc;
        tok->kind = QT_TOK_NUMBER;
    }
    if (p - pos > QT_QUERY_NUMBER_MAX)
        return lex_fail(err_pos, pos, "number literal too long");
    tok->end = (uint32_t)p;
    return 0;
}

/* Punctuation and operators; 0 when text[pos] starts none. */
static size_t
lex_punct(const char *text, size_t len, size_t pos, enum qt_tok_kind *kind)
{
    char c = text[pos], n = pos + 1 < len ? text[pos + 1] : '\0';
    switch (c) {
    case '.': *kind = QT_TOK_DOT; return 1;
    case ',': *kind = QT_TOK_COMMA; return 1;
    case '|': *kind = QT_TOK_PIPE; return 1;
    case '{': *kind = QT_TOK_LBRACE; return 1;
    case '}': *kind = QT_TOK_RBRACE; return 1;
    case '[': *kind = QT_TOK_LBRACKET; return 1;
    case ']': *kind = QT_TOK_RBRACKET; return 1;
    case '(': *kind = QT_TOK_LPAREN; return 1;
    case ')': *kind = QT_TOK_RPAREN; return 1;
    case '+': *kind = QT_TOK_PLUS; return 1;
    case '-': *kind = QT_TOK_MINUS; return 1;
    case '=':
        *kind = n == '~' ? QT_TOK_RE : n == '=' ? QT_TOK_EQEQ : QT_TOK_EQ;
        return *kind == QT_TOK_EQ ? 1 : 2;
    case '!': *kind = n == '~' ? QT_TOK_NRE : QT_TOK_NE; return n == '~' || n == '=' ? 2 : 0;
    case '>': *kind = n == '=' ? QT_TOK_GE : QT_TOK_GT; return n == '=' ? 2 : 1;
    case '<': *kind = n == '=' ? QT_TOK_LE : QT_TOK_LT; return n == '=' ? 2 : 1;
    default: return 0;
    }
}

int
qt_lex_next(const char *text, size_t len, size_t pos, struct qt_tok *tok, size_t *err_pos)
{
    qt_assert(len <= QT_QUERY_TEXT_MAX);
    qt_assert(pos <= len);
    while (pos < len &&
           (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' || text[pos] == '\r'))
        pos++;
    tok->start = (uint32_t)pos;
    tok->end = (uint32_t)pos;
    if (pos == len) {
        tok->kind = QT_TOK_EOF;
        return 0;
    }
    char c = text[pos];
    if (is_alpha(c)) {
        size_t p = pos + 1;
        while (p < len && (is_alpha(text[p]) || is_digit(text[p])))
            p++;
        tok->kind = QT_TOK_IDENT;
        tok->end = (uint32_t)p;
        return 0;
    }
    if (is_digit(c))
        return lex_digits(text, len, pos, tok, err_pos);
    if (c == '"') {
        size_t end = pos;
        int rc = lex_string(text, len, pos, &end, err_pos);
        tok->kind = QT_TOK_STRING;
        tok->end = (uint32_t)end;
        return rc;
    }
    size_t n = lex_punct(text, len, pos, &tok->kind);
    if (n == 0) {
        if (c == '!')
            return lex_fail(err_pos, pos, "unexpected '!' (did you mean '!=' or '!~'?)");
        return lex_fail(err_pos, pos, "unexpected character");
    }
    tok->end = (uint32_t)(pos + n);
    return 0;
}

bool
qt_lex_is_word(const char *text, const struct qt_tok *tok, const char *word)
{
    qt_assert(tok->end >= tok->start);
    size_t n = strlen(word);
    return tok->kind == QT_TOK_IDENT && tok->end - tok->start == n &&
           memcmp(text + tok->start, word, n) == 0;
}

const char *
qt_lex_token_name(enum qt_tok_kind kind)
{
    /* ORDER TOKENS */
    static const char *const names[QT_TOK_KINDS] = {
        "end of query", "a name", "a string", "a number", "a duration", "a time", "'.'",
        "','",          "'|'",    "'{'",      "'}'",      "'['",        "']'",    "'('",
        "')'",          "'='",    "'!='",     "'=~'",     "'!~'",       "'=='",   "'>'",
        "'>='",         "'<'",    "'<='",     "'+'",      "'-'",
    };
    qt_assert((unsigned)kind < QT_TOK_KINDS);
    return names[kind];
}

size_t
qt_lex_string_decode(const char *text, const struct qt_tok *tok, char *out, uint32_t *map)
{
    qt_assert(tok->kind == QT_TOK_STRING);
    qt_assert(tok->end >= tok->start + 2);
    size_t n = 0;
    for (uint32_t p = tok->start + 1; p + 1 < tok->end; p++) {
        if (map != NULL)
            map[n] = p;
        if (text[p] == '\\' && (text[p + 1] == '"' || text[p + 1] == '\\') && p + 2 < tok->end)
            p++;
        out[n++] = text[p];
    }
    return n;
}

bool
qt_lex_is_ident(const char *s, size_t n)
{
    if (n == 0 || !is_alpha(s[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_alpha(s[i]) && !is_digit(s[i]))
            return false;
    return true;
}
