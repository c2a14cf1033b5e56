# Sets BITSLAB_FUZZERS from fuzz/harnesses.txt, the one list of harnesses.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/harnesses.txt)
file(STRINGS ${CMAKE_SOURCE_DIR}/fuzz/harnesses.txt BITSLAB_FUZZERS REGEX "^[a-z0-9_]+$")
