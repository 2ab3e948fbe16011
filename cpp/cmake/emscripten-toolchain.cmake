# The toolchain of the wasm presets: the CMake toolchain file that the
# installed Emscripten ships. Its root is $EMSCRIPTEN_ROOT when set (an emsdk
# checkout), else where Debian's emscripten package installs it. The file is
# found by its name under the root's cmake/ folder, so either layout works.
if(DEFINED ENV{EMSCRIPTEN_ROOT})
  set(seqsync_emscripten_root "$ENV{EMSCRIPTEN_ROOT}")
else()
  set(seqsync_emscripten_root "/usr/share/emscripten")
endif()
file(GLOB_RECURSE seqsync_emscripten_toolchain "${seqsync_emscripten_root}/cmake/Emscripten.cmake")
if(NOT seqsync_emscripten_toolchain)
  message(FATAL_ERROR "seqsync: no Emscripten.cmake under ${seqsync_emscripten_root}/cmake: "
                      "install Debian's emscripten package (bash scripts/setup.sh) or set EMSCRIPTEN_ROOT")
endif()
list(GET seqsync_emscripten_toolchain 0 seqsync_emscripten_toolchain)
include("${seqsync_emscripten_toolchain}")
