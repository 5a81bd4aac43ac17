# libFuzzer targets (docs/fuzzing.md): one executable fuzz-NAME per fuzz/fuzz-NAME.c, linked with
# clang's -fsanitize=fuzzer,address,undefined against an instrumented copy of the library.
#   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DVQCLIP_FUZZ=ON
#   cmake --build build-fuzz --target vqclip_fuzz     (or scripts/fuzz.sh, which also runs them)
# With fuzz/corpus/NAME present, ctest replays it through fuzz-NAME (label "fuzz").
option(VQCLIP_FUZZ "Build the libFuzzer targets in fuzz/ (needs clang)" OFF)
if(NOT VQCLIP_FUZZ)
  return()
endif()
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "VQCLIP_FUZZ needs clang: configure with CC=clang CXX=clang++")
endif()

set(VQCLIP_FUZZ_SAN -fsanitize=address,undefined -fno-sanitize-recover=undefined
  -fno-omit-frame-pointer)

# The library again, from the sources and compile settings of vqclip_obj (the objects of
# vqclip_core and libvqclip.so), with its C files instrumented for coverage and the sanitizers.
# The C++ shim over libtorch is not fuzzed and stays plain. The targets read internal headers
# (src/), as vqclip_core's users may.
get_target_property(VQCLIP_FUZZ_LIB_SRC vqclip_obj SOURCES)
add_library(vqclip_fuzzcore STATIC EXCLUDE_FROM_ALL ${VQCLIP_FUZZ_LIB_SRC})
foreach(prop INCLUDE_DIRECTORIES COMPILE_DEFINITIONS CXX_STANDARD)
  get_target_property(value vqclip_obj ${prop})
  if(value)
    set_target_properties(vqclip_fuzzcore PROPERTIES ${prop} "${value}")
  endif()
endforeach()
target_include_directories(vqclip_fuzzcore PUBLIC
  ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/src)
target_include_directories(vqclip_fuzzcore SYSTEM PUBLIC ${STB_INCLUDE_DIR})
target_compile_definitions(vqclip_fuzzcore PUBLIC ${VQCLIP_INTERNAL_DEFS})
get_target_property(VQCLIP_FUZZ_LIBS vqclip_obj LINK_LIBRARIES)
target_link_libraries(vqclip_fuzzcore PUBLIC ${VQCLIP_FUZZ_LIBS})
target_compile_options(vqclip_fuzzcore PRIVATE
  $<$<COMPILE_LANGUAGE:C>:-fsanitize=fuzzer-no-link ${VQCLIP_FUZZ_SAN} ${VQCLIP_WARN}>)
if(VQCLIP_PCH)
  target_precompile_headers(vqclip_fuzzcore PRIVATE ${VQCLIP_SHIM_PCH})
endif()

enable_testing()
add_custom_target(vqclip_fuzz)
file(GLOB VQCLIP_FUZZ_TARGETS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/fuzz-*.c)
foreach(src ${VQCLIP_FUZZ_TARGETS})
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz-" "" short ${name})
  add_executable(${name} EXCLUDE_FROM_ALL ${src})
  if(name STREQUAL "fuzz-batch") # the batch-line parser lives with the CLI, outside the library
    file(GLOB cli_src CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/cli/*.c)
    list(FILTER cli_src EXCLUDE REGEX "/main\\.c$")
    target_sources(${name} PRIVATE ${cli_src})
    target_include_directories(${name} SYSTEM PRIVATE ${STB_INCLUDE_DIR})
  endif()
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer ${VQCLIP_FUZZ_SAN} ${VQCLIP_WARN})
  target_compile_definitions(${name} PRIVATE VQCLIP_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  target_link_options(${name} PRIVATE -fsanitize=fuzzer ${VQCLIP_FUZZ_SAN})
  target_link_libraries(${name} PRIVATE vqclip_fuzzcore)
  add_dependencies(vqclip_fuzz ${name})
  if(IS_DIRECTORY ${CMAKE_SOURCE_DIR}/fuzz/corpus/${short})
    add_test(NAME ${name}-corpus COMMAND ${name} -runs=0 ${CMAKE_SOURCE_DIR}/fuzz/corpus/${short})
    set_tests_properties(${name}-corpus PROPERTIES LABELS fuzz TIMEOUT 300)
  endif()
endforeach()
