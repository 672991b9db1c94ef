# cmake -DIN=<text file> -DOUT=<c file> -DNAME=<symbol> -P embed.cmake
# Writes <OUT> defining `const char NAME[]` with the file's text, so a data
# file in the repository (the default cost table) is compiled in verbatim.
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUT}"
  "/* generated from ${IN} by cmake/embed.cmake: do not edit */\n"
  "const char ${NAME}[] = {${bytes} 0x00};\n")
