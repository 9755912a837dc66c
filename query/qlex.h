/*
 * qlex.h -- tokens of the query language.
 *
 * The lexer is a pure function from (text, len, offset) to the next token:
 * no state, no allocation, so the parser gets any lookahead by lexing again
 * from a token's end.  Tokens carry byte spans into the text; string
 * escapes are decoded by the parser (qt_lex_string_decode).  Keywords are
 * not tokens: an identifier is a keyword only where the grammar expects
 * one (design/query.md, "Names and keywords").
 */
#ifndef QT_QLEX_H
#define QT_QLEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ORDER TOKENS (qt_lex_token_name mirrors this list) */
enum qt_tok_kind {
    QT_TOK_EOF = 0,
    QT_TOK_IDENT,    /* [A-Za-z_][A-Za-z0-9_]* */
    QT_TOK_STRING,   /* "..." with \" and \\ escapes */
    QT_TOK_NUMBER,   /* digits [. digits] [e [+-] digits] */
    QT_TOK_UNITNUM,  /* digits then letters/digits: 90s, 1h30m, 1794787200s */
    QT_TOK_TIME,     /* 4 digits '-' ...: an RFC 3339 lexeme, checked by qtime */
    QT_TOK_DOT,      /* . */
    QT_TOK_COMMA,    /* , */
    QT_TOK_PIPE,     /* | */
    QT_TOK_LBRACE,   /* { */
    QT_TOK_RBRACE,   /* } */
    QT_TOK_LBRACKET, /* [ */
    QT_TOK_RBRACKET, /* ] */
    QT_TOK_LPAREN,   /* ( */
    QT_TOK_RPAREN,   /* ) */
    QT_TOK_EQ,       /* = */
    QT_TOK_NE,       /* != */
    QT_TOK_RE,       /* =~ */
    QT_TOK_NRE,      /* !~ */
    QT_TOK_EQEQ,     /* == */
    QT_TOK_GT,       /* > */
    QT_TOK_GE,       /* >= */
    QT_TOK_LT,       /* < */
    QT_TOK_LE,       /* <= */
    QT_TOK_PLUS,     /* + */
    QT_TOK_MINUS,    /* - */
    QT_TOK_KINDS
};

struct qt_tok {
    enum qt_tok_kind kind;
    uint32_t start; /* byte offset of the first byte */
    uint32_t end;   /* one past the last byte */
};

/*
 * Skip whitespace (space, tab, CR, LF) from text[pos] and lex one token.
 * len <= QT_QUERY_TEXT_MAX and pos <= len.  Returns 0, or QT_ESYNTAX with
 * a static reason in qt_err_detail() and the fault's byte offset in
 * *err_pos (unexpected character, unterminated string, control character
 * in a string, malformed number).  Reads only text[0..len).
 */
int qt_lex_next(const char *text, size_t len, size_t pos, struct qt_tok *tok, size_t *err_pos);

/* True when tok is an identifier spelled exactly `word`. */
bool qt_lex_is_word(const char *text, const struct qt_tok *tok, const char *word);

/* Human name of a token kind for messages ("'|'", "a number", ...). */
const char *qt_lex_token_name(enum qt_tok_kind kind);

/*
 * Decode the string token text[tok->start..tok->end) (quotes included) into
 * out (cap >= token length), returning the decoded length.  \" is a quote,
 * \\ a backslash, and a backslash before anything else stands for itself
 * (so regexes read naturally: "a\.b").  If map is not NULL, map[i] is the
 * source offset of decoded byte i (regex error positions use it).
 */
size_t qt_lex_string_decode(const char *text, const struct qt_tok *tok, char *out, uint32_t *map);

/* True when s[0..n) is a bare identifier (prints without quotes). */
bool qt_lex_is_ident(const char *s, size_t n);

#endif
