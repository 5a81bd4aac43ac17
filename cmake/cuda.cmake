# CUDA specifics, included by the top CMakeLists.txt after the library targets exist: vqclip_obj
# (the library's objects, compiled once), and vqclip_core (static) and vqclip_shared
# (libvqclip.so) linked from them.
#
# vqclip's CUDA code is libtorch's: this file only notices that the libtorch found is a CUDA
# build and then
#   - defines VQT_WITH_CUDA_HEADERS for vqclip_obj, so that src/torch/shim.cpp reads peak
#     device memory from c10::cuda::CUDACachingAllocator (vqt_cuda_peak_bytes), when the
#     c10/cuda and CUDA runtime headers are both there;
#   - keeps libtorch_cuda.so as a run-time dependency even under a linker that defaults to
#     --as-needed (Ubuntu's): vqclip need not reference a symbol of it directly, and without it
#     libtorch reports no CUDA device. That is every link of libtorch: the programs that link
#     vqclip_core, and libvqclip.so.
#   - compiles the recorded CUDA graphs of src/torch/shim_graph.cpp in when they build here
#     (vqclip_check_cuda_graphs, below), and the operator and kernel tables of
#     src/torch/shim_kernels.cpp likewise (vqclip_check_kernel_tables).
# With Debian's CPU-only libtorch it does nothing. VQCLIP_CUDA is set ON or OFF for the rest of
# the build and printed. Also: C++20 for vqclip_obj where the libtorch headers demand it.

# PyTorch 2.14 and later headers refuse C++17 (#error "C++20 or later ... required"); the project
# asks for C++17, which older libtorch builds (Debian's 1.13) need to stay on.
if(DEFINED Torch_VERSION AND Torch_VERSION VERSION_GREATER_EQUAL 2.14)
  set_property(TARGET vqclip_obj PROPERTY CXX_STANDARD 20)
endif()

# Compiles one shim file alone against the libtorch found, with `defs`, before the build uses
# it; `ok` says whether it compiled. On failure `errors` holds the compiler's first error lines.
# Used for the files whose libtorch API changes between versions: a CUDA libtorch's version is
# the machine's (the lent GPU machine's PyTorch), and a file that does not compile there must
# cost its feature, with a warning, not the build: that machine's time is short.
function(vqclip_try_shim_file ok errors file defs)
  get_target_property(std vqclip_obj CXX_STANDARD)
  set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
  string(MAKE_C_IDENTIFIER "${file}" dir)
  try_compile(res ${CMAKE_BINARY_DIR}/shim-check/${dir}
    SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${file}
    CMAKE_FLAGS "-DINCLUDE_DIRECTORIES=${CMAKE_CURRENT_SOURCE_DIR}/src;${CMAKE_CURRENT_SOURCE_DIR}/include;${VQCLIP_CUDART_INCLUDE}"
    COMPILE_DEFINITIONS ${defs}
    LINK_LIBRARIES ${TORCH_LIBRARIES}
    CXX_STANDARD ${std}
    OUTPUT_VARIABLE out)
  string(REGEX MATCHALL "[^\n]*error[^\n]*" errs "${out}")
  list(LENGTH errs n)
  if(n GREATER 8)
    list(SUBLIST errs 0 8 errs)
  endif()
  string(REPLACE ";" "\n" errs "${errs}")
  set(${ok} ${res} PARENT_SCOPE)
  set(${errors} "${errs}" PARENT_SCOPE)
endfunction()

# CUDA graphs (src/torch/shim_graph.cpp, vqt_graphed): compiled with VQT_WITH_CUDA_GRAPHS first.
# A libtorch whose graph API differs gives a build without graphs, which says so (CLIP runs
# eagerly, with a warning at run time), instead of a failed build.
function(vqclip_check_cuda_graphs)
  find_path(VQCLIP_ATEN_GRAPH_INCLUDE ATen/cuda/CUDAGraph.h HINTS ${TORCH_INCLUDE_DIRS}
            NO_DEFAULT_PATH)
  if(NOT VQCLIP_ATEN_GRAPH_INCLUDE)
    message(STATUS "vqclip: no ATen/cuda/CUDAGraph.h: built without CUDA graphs")
    return()
  endif()
  vqclip_try_shim_file(ok errs src/torch/shim_graph.cpp
                       "-DVQT_WITH_CUDA_GRAPHS;-DVQT_WITH_CUDA_HEADERS")
  if(ok)
    target_compile_definitions(vqclip_obj PRIVATE VQT_WITH_CUDA_GRAPHS)
    message(STATUS "vqclip: CUDA graphs: on (CLIP's image encoder replays recorded graphs)")
  else()
    message(STATUS "vqclip: CUDA graphs: off (src/torch/shim_graph.cpp does not compile here)")
    message(WARNING "vqclip: src/torch/shim_graph.cpp does not compile with this libtorch's CUDA "
                    "graphs; built without them. First errors:\n${errs}")
  endif()
endfunction()

# The operator and kernel tables (src/torch/shim_kernels.cpp, VQCLIP_PROFILE_KERNELS) use
# libtorch's profiler (Kineto) API, which changes between versions more than any other this
# project uses. Where that file does not compile, the build takes its stub (VQT_NO_KERNEL_TABLES):
# `--profile` then gives the stage table alone, and a run that asks for the tables logs why.
function(vqclip_check_kernel_tables)
  vqclip_try_shim_file(ok errs src/torch/shim_kernels.cpp "")
  if(ok)
    message(STATUS "vqclip: operator and kernel tables (VQCLIP_PROFILE_KERNELS): on")
  else()
    target_compile_definitions(vqclip_obj PRIVATE VQT_NO_KERNEL_TABLES)
    message(STATUS "vqclip: operator and kernel tables (VQCLIP_PROFILE_KERNELS): off "
                   "(src/torch/shim_kernels.cpp does not compile here)")
    message(WARNING "vqclip: src/torch/shim_kernels.cpp does not compile with this libtorch's "
                    "profiler API; built without the operator and kernel tables. First "
                    "errors:\n${errs}")
  endif()
endfunction()

set(VQCLIP_CUDA OFF)
if(TARGET torch_cuda OR CAFFE2_USE_CUDA OR TORCH_CUDA OR C10_CUDA_LIBRARY OR TORCH_CUDA_LIBRARIES)
  set(VQCLIP_CUDA ON)
else()
  foreach(lib IN LISTS TORCH_LIBRARIES)
    if(lib MATCHES "(^|/)(lib)?(torch_cuda|c10_cuda)[.a-z]*$" OR lib MATCHES "^CUDA::")
      set(VQCLIP_CUDA ON)
    endif()
  endforeach()
endif()

if(NOT VQCLIP_CUDA)
  message(STATUS "vqclip: libtorch without CUDA: CPU build")
  return()
endif()
vqclip_check_kernel_tables()

# The headers shim.cpp needs for the allocator statistics: c10's (beside libtorch's) and the
# CUDA runtime's (from the toolkit that find_package(Torch) located, or the usual places).
find_path(VQCLIP_C10_CUDA_INCLUDE c10/cuda/CUDACachingAllocator.h
          HINTS ${TORCH_INCLUDE_DIRS} NO_DEFAULT_PATH)
find_path(VQCLIP_CUDART_INCLUDE cuda_runtime_api.h
          HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDA_INCLUDE_DIRS} ${CUDA_TOOLKIT_ROOT_DIR}/include
                $ENV{CUDA_HOME}/include /usr/local/cuda/include)

if(VQCLIP_C10_CUDA_INCLUDE AND VQCLIP_CUDART_INCLUDE)
  target_compile_definitions(vqclip_obj PRIVATE VQT_WITH_CUDA_HEADERS)
  target_include_directories(vqclip_obj SYSTEM PRIVATE ${VQCLIP_CUDART_INCLUDE})
  message(STATUS "vqclip: CUDA libtorch: peak device memory from the caching allocator "
                 "(CUDA headers in ${VQCLIP_CUDART_INCLUDE})")
  # Free device memory (vqt_cuda_free_bytes, for the up-front size check) needs the CUDA
  # runtime itself; find_package(Torch) defines CUDA::cudart when it found the toolkit.
  if(TARGET CUDA::cudart)
    target_link_libraries(vqclip_obj PRIVATE CUDA::cudart)
    target_link_libraries(vqclip_core PRIVATE CUDA::cudart)
    target_link_libraries(vqclip_shared PRIVATE CUDA::cudart)
    target_compile_definitions(vqclip_obj PRIVATE VQT_WITH_CUDART)
    vqclip_check_cuda_graphs()
  else()
    message(STATUS "vqclip: no CUDA::cudart target: free device memory unknown, sizes are not "
                   "checked against it before a run (out-of-memory is still reported)")
  endif()
else()
  message(WARNING "vqclip: CUDA libtorch, but c10/cuda or cuda_runtime_api.h was not found: "
                  "vqt_cuda_peak_bytes() will report 0 (set CUDA_HOME to the toolkit)")
endif()

# LINKER:--no-as-needed lands before the libraries on every link line that uses vqclip_core,
# so libtorch_cuda.so stays a NEEDED entry of the programs, and on libvqclip.so's own link line,
# so it stays one of the library's (a program linked with -lvqclip then needs nothing more).
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
  target_link_options(vqclip_core INTERFACE "LINKER:--no-as-needed")
  target_link_options(vqclip_shared PRIVATE "LINKER:--no-as-needed")
endif()
