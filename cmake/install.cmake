# libchorus.so and libchorus.a: every layer of src/ in one library, and the
# installed package (headers, the tool, a CMake package, chorus.pc).
#
# The shared library exports only the public API (include/chorus/): the C
# functions chorus_* and the C++ namespace chorus's Runtime, to_string and
# Error; cmake/libchorus.map hides everything else, so the internal layers
# can change without an ABI change. SONAME libchorus.so.0: the 0 goes up
# when an exported signature or a public struct's layout changes
# incompatibly (appending fields to a C struct with struct_size does not).
set(chorus_library_layers util gguf kernels model engine decode chat api)
set(chorus_library_objects)
foreach(layer ${chorus_library_layers})
  list(APPEND chorus_library_objects $<TARGET_OBJECTS:chorus_${layer}>)
endforeach()
# What the layers link against (all shared in Debian); nlohmann_json is
# headers only.
set(chorus_library_deps fmt::fmt hwy::hwy ICU::uc Threads::Threads)

add_library(chorus_shared SHARED ${chorus_library_objects})
add_library(chorus_static STATIC ${chorus_library_objects})
foreach(t chorus_shared chorus_static)
  set_target_properties(${t} PROPERTIES OUTPUT_NAME chorus LINKER_LANGUAGE CXX)
  target_include_directories(${t} INTERFACE $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include>
                                            $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
endforeach()
target_link_libraries(chorus_shared PRIVATE ${chorus_library_deps})
target_link_libraries(chorus_static INTERFACE ${chorus_library_deps})
set(chorus_map ${CMAKE_SOURCE_DIR}/cmake/libchorus.map)
set_target_properties(chorus_shared PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION 0
                                               LINK_DEPENDS ${chorus_map})
target_link_options(chorus_shared PRIVATE -Wl,--version-script=${chorus_map})
# Every symbol resolved at link time, so a missing dependency fails here and
# not in an app. Not with sanitizers under clang: clang leaves the sanitizer
# runtimes out of shared libraries (the executable brings them).
if(NOT CHORUS_FUZZ AND NOT (CHORUS_SANITIZE AND CMAKE_CXX_COMPILER_ID MATCHES "Clang"))
  target_link_options(chorus_shared PRIVATE -Wl,--no-undefined)
endif()
add_library(chorus::chorus ALIAS chorus_shared)

if(TARGET chorus)  # not with CHORUS_LIBRARY_ONLY
  install(TARGETS chorus RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(TARGETS chorus_shared EXPORT chorusTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT Unspecified)
install(TARGETS chorus_static ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/chorus DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# find_package(chorus) -> chorus::chorus (the shared library).
include(CMakePackageConfigHelpers)
set(chorus_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/chorus)
set_target_properties(chorus_shared PROPERTIES EXPORT_NAME chorus)
install(EXPORT chorusTargets NAMESPACE chorus:: DESTINATION ${chorus_cmake_dir})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/chorusConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/chorusConfig.cmake INSTALL_DESTINATION ${chorus_cmake_dir})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/chorusConfigVersion.cmake
                                 COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/chorusConfig.cmake ${CMAKE_BINARY_DIR}/chorusConfigVersion.cmake
        DESTINATION ${chorus_cmake_dir})

# pkg-config: `pkg-config --cflags --libs chorus`; --static adds what
# libchorus.a needs.
file(RELATIVE_PATH chorus_pc_to_prefix /${CMAKE_INSTALL_LIBDIR}/pkgconfig /)
string(REGEX REPLACE "/$" "" chorus_pc_to_prefix "${chorus_pc_to_prefix}")
configure_file(${CMAKE_SOURCE_DIR}/cmake/chorus.pc.in ${CMAKE_BINARY_DIR}/chorus.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/chorus.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# The Python module (python/chorus), beside the other data of chorus.
install(DIRECTORY ${CMAKE_SOURCE_DIR}/python/chorus DESTINATION ${CMAKE_INSTALL_DATADIR}/chorus/python
        PATTERN __pycache__ EXCLUDE PATTERN "*_test.py" EXCLUDE)
