/*
 * qt_hash.c -- storage for the fuzzing hook declared in qt_hash.h.
 */
#include "qt_hash.h"

bool qt_hash_skip_verify = false;
