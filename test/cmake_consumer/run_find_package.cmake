# Builds colock on its own (Release, library only), installs it into BIN/prefix, then configures, builds and
# runs the find_package consumer (SRC/installed) against that prefix.
file(REMOVE_RECURSE ${BIN})
set(colock_build ${BIN}/colock-build)
set(prefix ${BIN}/prefix)
set(consumer_build ${BIN}/consumer-build)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "${what} failed (${rc})")
  endif()
endfunction()

# 1. colock as a top-level project (so its install rules are on), without tests, examples, demo or tool.
run("configuring colock (standalone, into ${colock_build})"
    ${CMAKE_COMMAND} -S ${COLOCK_SOURCE_DIR} -B ${colock_build} -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER} -DCMAKE_INSTALL_PREFIX=${prefix}
    -DCOLOCK_BUILD_TESTS=OFF -DCOLOCK_BUILD_EXAMPLES=OFF -DCOLOCK_BUILD_DEMO=OFF -DCOLOCK_BUILD_TOOLS=OFF)
run("building colock (${colock_build})" ${CMAKE_COMMAND} --build ${colock_build} --parallel 2)

# 2. Install, and check that the prefix holds the headers and the package config.
run("installing colock into ${prefix}" ${CMAKE_COMMAND} --install ${colock_build})
if(NOT EXISTS ${prefix}/include/colock/colock.hpp)
  message(FATAL_ERROR "the install holds no include/colock/colock.hpp (in ${prefix})")
endif()
foreach(file colock-config.cmake colock-config-version.cmake colock-targets.cmake)
  file(GLOB_RECURSE found ${prefix}/*/cmake/colock/${file})
  if(NOT found)
    message(FATAL_ERROR "the install holds no cmake/colock/${file} (in ${prefix})")
  endif()
endforeach()
# An installed package must not point back into colock's source or build tree.
file(GLOB_RECURSE package_files ${prefix}/*/cmake/colock/*.cmake)
foreach(file ${package_files})
  file(READ ${file} text)
  foreach(tree ${COLOCK_SOURCE_DIR}/include ${COLOCK_SOURCE_DIR}/src ${colock_build})
    string(FIND "${text}" "${tree}" at)
    if(at GREATER -1)
      message(FATAL_ERROR "the installed ${file} names ${tree}")
    endif()
  endforeach()
endforeach()

# 3. The consumer: find_package(colock) through CMAKE_PREFIX_PATH, nothing else found by hand.
run("configuring the find_package consumer (into ${consumer_build})"
    ${CMAKE_COMMAND} -S ${SRC}/installed -B ${consumer_build} -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER} -DCMAKE_PREFIX_PATH=${prefix})
file(STRINGS ${consumer_build}/CMakeCache.txt colock_dir REGEX "^colock_DIR:")
string(REGEX REPLACE "^colock_DIR:[A-Z]+=" "" colock_dir "${colock_dir}")
cmake_path(IS_PREFIX prefix "${colock_dir}" NORMALIZE in_prefix)
if(NOT in_prefix)
  message(FATAL_ERROR "find_package(colock) found '${colock_dir}', not the install in ${prefix}")
endif()
run("building the find_package consumer (${consumer_build})" ${CMAKE_COMMAND} --build ${consumer_build} --parallel 2)
run("running the find_package consumer" ${consumer_build}/consumer)
message(STATUS "the find_package consumer built and ran against the install in ${prefix}")
