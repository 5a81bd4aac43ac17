# Installation of everything beside the binary, included by the top CMakeLists.txt after the
# vqclip_core and vqclip targets exist (the binary itself is installed there):
#   share/man/man1/vqclip.1                          the man page (doc/vqclip.1)
#   share/bash-completion/completions/vqclip         bash completion (completions/vqclip.bash)
#   share/vqclip/models/README.md, urls.tsv          where the model files come from
#   share/vqclip/models/demo/                        the demo models (models/demo), which
#                                                    vqclip uses when no model is downloaded
#   bin/vqclip-download-models                       scripts/download-models.sh; it finds the
#                                                    URL table at ../share/vqclip/models
# compiles the install prefix's models folder into vqclip_core as VQCLIP_DATADIR, the last
# folder vqc_model_dirs() searches (src/gen/modelpath.c has a default for builds without this
# file), and keeps a non-system libtorch folder in the installed binary's RPATH.
# Directories follow GNUInstallDirs, so -DCMAKE_INSTALL_PREFIX=/usr and distribution layouts
# work; `cmake --install build --prefix DIR` moves the files, not the compiled-in models folder.

include(GNUInstallDirs)

set(VQCLIP_MODELS_DATADIR "${CMAKE_INSTALL_DATADIR}/vqclip/models")

target_compile_definitions(vqclip_core PRIVATE
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
