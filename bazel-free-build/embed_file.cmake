# Writes OUT: a C file defining `const char SYMBOL[]` (NUL-terminated) and
# `const unsigned long SYMBOL_len` with the bytes of IN. Run with cmake -P at build time.
file(READ ${IN} content HEX)
string(LENGTH "${content}" hexlen)
math(EXPR nbytes "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${content}")
file(WRITE ${OUT} "/* generated from ${IN}; do not edit */\n"
     "const char ${SYMBOL}[] = {${body}0x00};\n"
     "const unsigned long ${SYMBOL}_len = ${nbytes};\n")
