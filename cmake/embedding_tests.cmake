# Tests of chorus as a library for apps: the Python module over libchorus.so
# (python/) and the example app built against an installed package
# (tests/install/install_test.sh).

# Sanitizer builds: what a program outside this build needs to load or link
# the sanitized library.
set(chorus_sanitizer_flags "")
set(chorus_python_env "")
if(CHORUS_SANITIZE AND NOT CHORUS_SANITIZE STREQUAL "thread")
  set(chorus_sanitizer_flags "-fsanitize=address,undefined")
  # python3 itself is not sanitized: the ASan runtime must be loaded first,
  # and libstdc++ with it, or ASan's __cxa_throw interceptor finds no real
  # __cxa_throw to call and aborts when chorus throws. Python's own
  # allocations are not chorus's leaks.
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE asan_lib OUTPUT_STRIP_TRAILING_WHITESPACE)
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libstdc++.so
                  OUTPUT_VARIABLE stdcxx_lib OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(chorus_python_env "LD_PRELOAD=${asan_lib}:${stdcxx_lib}" "ASAN_OPTIONS=detect_leaks=0")
endif()

# Debian's python3 (only the standard library: ctypes, unittest); a missing
# python3 is a skip (77), not a pass.
add_test(NAME python COMMAND bash -c
         "command -v /usr/bin/python3 >/dev/null || { echo 'SKIP: /usr/bin/python3 is not installed'; exit 77; }; \
exec /usr/bin/python3 -m unittest discover -v -s '${CMAKE_SOURCE_DIR}/python' -p '*_test.py'")
set_tests_properties(python PROPERTIES SKIP_RETURN_CODE 77 ENVIRONMENT
  "CHORUS_LIBRARY=$<TARGET_FILE:chorus_shared>;CHORUS_SOURCE_DIR=${CMAKE_SOURCE_DIR};PYTHONDONTWRITEBYTECODE=1;${chorus_python_env}")

add_test(NAME install COMMAND bash ${CMAKE_SOURCE_DIR}/tests/install/install_test.sh
         ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR} "${chorus_sanitizer_flags}")
set_tests_properties(install PROPERTIES SKIP_RETURN_CODE 77)
