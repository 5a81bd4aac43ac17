# Installation of everything beside the binary, included by the top CMakeLists.txt after the
# library targets (vqclip_obj, vqclip_shared) and vqclip exist (the binary itself is installed
# there):
#   include/vqclip.h                                 the public C header
#   lib/libvqclip.so.0.1.0 (+ .so.0, .so)            the library (CMAKE_INSTALL_LIBDIR)
#   lib/pkgconfig/vqclip.pc                          its pkg-config file (cmake/vqclip.pc.in)
#   share/man/man1/vqclip.1                          the man page (doc/vqclip.1)
#   share/bash-completion/completions/vqclip         bash completion (completions/vqclip.bash)
#   share/vqclip/models/README.md, urls.tsv          where the model files come from
#   share/vqclip/models/demo/                        the demo models (models/demo), which
#                                                    vqclip uses when no model is downloaded
#   bin/vqclip-download-models                       scripts/download-models.sh; it finds the
#                                                    URL table at ../share/vqclip/models
# compiles the install prefix's models folder into the library as VQCLIP_DATADIR, the last
# folder vqc_model_dirs() searches (src/gen/modelpath.c has a default for builds without this
# file), and keeps a non-system libtorch folder in the installed binary's RPATH (and the
# library's: CMakeLists.txt).
# Directories follow GNUInstallDirs, so -DCMAKE_INSTALL_PREFIX=/usr and distribution layouts
# work; `cmake --install build --prefix DIR` moves the files, not the compiled-in models folder.

include(GNUInstallDirs)

set(VQCLIP_MODELS_DATADIR "${CMAKE_INSTALL_DATADIR}/vqclip/models")

target_compile_definitions(vqclip_obj PRIVATE
  VQCLIP_DATADIR="${CMAKE_INSTALL_FULL_DATADIR}/vqclip/models")

# A libtorch outside the system folders (a CUDA build from pip or a tarball, found through
# CMAKE_PREFIX_PATH) must still be found by the installed binary: keep its folder in the
# install RPATH. With Debian's libtorch (in /usr/lib) this adds nothing.
set_target_properties(vqclip PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)

install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/doc/vqclip.1"
        DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")
install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/completions/vqclip.bash"
        DESTINATION "${CMAKE_INSTALL_DATADIR}/bash-completion/completions"
        RENAME vqclip)
install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/models/README.md"
              "${CMAKE_CURRENT_SOURCE_DIR}/models/urls.tsv"
        DESTINATION "${VQCLIP_MODELS_DATADIR}")
install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/models/demo/README.md"
              "${CMAKE_CURRENT_SOURCE_DIR}/models/demo/vqgan_demo.ckpt"
              "${CMAKE_CURRENT_SOURCE_DIR}/models/demo/vqgan_demo.yaml"
              "${CMAKE_CURRENT_SOURCE_DIR}/models/demo/clip_demo.safetensors"
              "${CMAKE_CURRENT_SOURCE_DIR}/models/demo/vocab.json"
              "${CMAKE_CURRENT_SOURCE_DIR}/models/demo/merges.txt"
        DESTINATION "${VQCLIP_MODELS_DATADIR}/demo")
install(PROGRAMS "${CMAKE_CURRENT_SOURCE_DIR}/scripts/download-models.sh"
        DESTINATION "${CMAKE_INSTALL_BINDIR}"
        RENAME vqclip-download-models)

# ---- the library --------------------------------------------------------------------------------
install(TARGETS vqclip_shared
        LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" NAMELINK_COMPONENT Development)
install(FILES "${CMAKE_CURRENT_SOURCE_DIR}/include/vqclip.h"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

# vqclip.pc is written when installing, so that its prefix is the one installed into
# (`cmake --install build --prefix DIR` included; DESTDIR is not part of it). Relative libdir and
# includedir are written under ${prefix}, absolute ones as they are.
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(VQCLIP_PC_${dir} "${CMAKE_INSTALL_${dir}}")
    set(VQCLIP_INSTALL_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(VQCLIP_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
    set(VQCLIP_INSTALL_${dir} "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
install(CODE "
  set(VQCLIP_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(VQCLIP_PC_LIBDIR [=[${VQCLIP_PC_LIBDIR}]=])
  set(VQCLIP_PC_INCLUDEDIR [=[${VQCLIP_PC_INCLUDEDIR}]=])
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  configure_file(\"${CMAKE_CURRENT_SOURCE_DIR}/cmake/vqclip.pc.in\"
                 \"${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/vqclip.pc\" @ONLY)
  file(INSTALL DESTINATION \"${VQCLIP_INSTALL_LIBDIR}/pkgconfig\" TYPE FILE
       FILES \"${CMAKE_CURRENT_BINARY_DIR}/pkgconfig/vqclip.pc\")
")
