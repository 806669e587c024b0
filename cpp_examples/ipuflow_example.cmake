# Shared by the examples' CMakeLists.txt: finds ipuflow and defines ipuflow_example(NAME SOURCE).
#
# Where ipuflow comes from, first match wins: the parent project's target (tests/CMakeLists.txt); the in-tree build
# when IPUFLOW_LIBRARY is given; an installed package (scripts/install.sh; -DCMAKE_PREFIX_PATH=<prefix>); else the
# in-tree debug build.
if(NOT TARGET ipuflow::ipuflow AND NOT IPUFLOW_LIBRARY)
    find_package(ipuflow 0.1 CONFIG QUIET)
    if(ipuflow_FOUND)
        message(STATUS "ipuflow ${ipuflow_VERSION}: installed package (${ipuflow_DIR})")
    endif()
endif()
if(NOT TARGET ipuflow::ipuflow)
    get_filename_component(_root "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
    set(IPUFLOW_LIBRARY "${_root}/target/debug/libipuflow.so" CACHE FILEPATH "libipuflow to link")
    set(IPUFLOW_INCLUDE_DIR "${_root}/include" CACHE PATH "Where ipuflow.h and ipuflow.hpp are")
    add_library(ipuflow::ipuflow SHARED IMPORTED)
    set_target_properties(ipuflow::ipuflow PROPERTIES
        IMPORTED_LOCATION "${IPUFLOW_LIBRARY}"
        IMPORTED_NO_SONAME TRUE
        INTERFACE_INCLUDE_DIRECTORIES "${IPUFLOW_INCLUDE_DIR}")
    get_filename_component(_libdir "${IPUFLOW_LIBRARY}" DIRECTORY)
    set(CMAKE_BUILD_RPATH "${_libdir}")
    message(STATUS "ipuflow: in-tree library ${IPUFLOW_LIBRARY}")
endif()

# ipuflow_example(NAME SOURCE): a C++17 program linked to ipuflow, warnings as errors.
function(ipuflow_example name source)
    add_executable(${name} ${source})
    set_target_properties(${name} PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
    target_compile_options(${name} PRIVATE -Wall -Wextra -Werror -pedantic)
    target_link_libraries(${name} PRIVATE ipuflow::ipuflow)
endfunction()
