# Finds each dependency with pkg-config and stops configuration with the
# name of the Debian package to install when one is missing.
find_package(PkgConfig QUIET)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config")
endif()

# kpsim_require(<target-prefix> <pkg-config module> <debian package>)
# defines the imported target PkgConfig::<target-prefix>.
function(kpsim_require prefix module debpkg)
  pkg_check_modules(${prefix} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${prefix}_FOUND)
    message(FATAL_ERROR
      "kpsim needs ${module} (pkg-config module '${module}' not found): "
      "apt-get install ${debpkg}")
  endif()
  message(STATUS "kpsim: ${module} ${${prefix}_VERSION}")
endfunction()

kpsim_require(UNICORN unicorn libunicorn-dev)
kpsim_require(LIBELF libelf libelf-dev)
kpsim_require(CMOCKA cmocka libcmocka-dev)
kpsim_require(SODIUM libsodium libsodium-dev)
kpsim_require(ZLIB zlib zlib1g-dev)
kpsim_require(JANSSON jansson libjansson-dev)
