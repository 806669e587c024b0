# IpuflowTests.cmake: registers one C or C++ test program of the C ABI in three ctest flavours.
#
#   ipuflow_abi_test(<name> SOURCES <files...> [NO_VALGRIND] [NO_ASAN] [TIMEOUT <s>] [ENV <VAR=value>...])
#
# builds <name> (plain) and <name>_asan (AddressSanitizer + UBSan) from the same sources, and adds the tests
#   plain/<name>      the program as built (label "plain")
#   asan/<name>       <name>_asan with ASAN_OPTIONS/UBSAN_OPTIONS/LSAN_OPTIONS below (label "asan")
#   valgrind/<name>   the plain program under memcheck, suppressions in tests/suppressions/ (label "valgrind")
# Run one flavour with `ctest -L asan`. Every program links the cdylib target `ipuflow::ipuflow`.
include_guard(GLOBAL)

set(IPUFLOW_WARNINGS -Wall -Wextra -Werror -pedantic)
set(IPUFLOW_SANITIZE -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)

# ASan: leaks are checked (detect_leaks=1) with the suppressions of tests/suppressions/lsan.supp; the Rust library is
# not instrumented, but its allocations go through the interposed malloc, so its leaks and heap misuse that reaches
# libc are still seen. UBSan stops at the first error (-fno-sanitize-recover=all).
set(IPUFLOW_ASAN_ENV
    "ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:print_summary=1"
    "LSAN_OPTIONS=suppressions=${IPUFLOW_TESTS_DIR}/suppressions/lsan.supp:print_suppressions=0"
    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")

set(IPUFLOW_VALGRIND_ARGS
    --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --track-origins=yes --num-callers=30
    --suppressions=${IPUFLOW_TESTS_DIR}/suppressions/valgrind.supp --quiet)

function(ipuflow_abi_test name)
    cmake_parse_arguments(T "NO_VALGRIND;NO_ASAN" "TIMEOUT" "SOURCES;ENV" ${ARGN})
    if(NOT T_TIMEOUT)
        set(T_TIMEOUT 300)
    endif()
    set(env ${IPUFLOW_TEST_ENV} ${T_ENV})

    add_executable(${name} ${T_SOURCES})
    target_compile_options(${name} PRIVATE ${IPUFLOW_WARNINGS} -g)
    target_link_libraries(${name} PRIVATE ipuflow::ipuflow Threads::Threads)
    add_test(NAME plain/${name} COMMAND ${name})
    set_tests_properties(plain/${name} PROPERTIES LABELS plain TIMEOUT ${T_TIMEOUT} ENVIRONMENT "${env}")

    if(NOT T_NO_ASAN AND IPUFLOW_WITH_ASAN)
        add_executable(${name}_asan ${T_SOURCES})
        target_compile_options(${name}_asan PRIVATE ${IPUFLOW_WARNINGS} -g -O1 ${IPUFLOW_SANITIZE})
        target_link_options(${name}_asan PRIVATE ${IPUFLOW_SANITIZE})
        target_link_libraries(${name}_asan PRIVATE ipuflow::ipuflow Threads::Threads)
        add_test(NAME asan/${name} COMMAND ${name}_asan)
        set_tests_properties(asan/${name} PROPERTIES LABELS asan TIMEOUT ${T_TIMEOUT}
                             ENVIRONMENT "${env};${IPUFLOW_ASAN_ENV}")
    endif()

    if(NOT T_NO_VALGRIND AND IPUFLOW_VALGRIND)
        add_test(NAME valgrind/${name} COMMAND ${IPUFLOW_VALGRIND} ${IPUFLOW_VALGRIND_ARGS} $<TARGET_FILE:${name}>)
        math(EXPR vg_timeout "${T_TIMEOUT} * 4")
        set_tests_properties(valgrind/${name} PROPERTIES LABELS valgrind TIMEOUT ${vg_timeout}
                             ENVIRONMENT "${env}")
    endif()
endfunction()

# ipuflow_header_test(<name> LANG C|CXX STD <n> HEADER <file> [DEFINES ...] [OPTIONS ...]): a translation unit that
# includes HEADER alone, twice, compiled with the warning flags in the given standard. The build is the test; the
# ctest entry (label "plain") runs the program, which checks the header's version against the library.
function(ipuflow_header_test name)
    cmake_parse_arguments(T "" "LANG;STD;HEADER" "DEFINES;OPTIONS" ${ARGN})
    if(T_LANG STREQUAL "C")
        set(src ${IPUFLOW_TESTS_DIR}/c/header_alone.c)
    else()
        set(src ${IPUFLOW_TESTS_DIR}/cpp/header_alone.cpp)
    endif()
    add_executable(${name} ${src})
    target_compile_definitions(${name} PRIVATE "IPF_HEADER=\"${T_HEADER}\"" ${T_DEFINES})
    target_compile_options(${name} PRIVATE ${IPUFLOW_WARNINGS} ${T_OPTIONS})
    if(T_LANG STREQUAL "C")
        set_target_properties(${name} PROPERTIES C_STANDARD ${T_STD} C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
    else()
        set_target_properties(${name} PROPERTIES CXX_STANDARD ${T_STD} CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
    endif()
    target_link_libraries(${name} PRIVATE ipuflow::ipuflow)
    add_test(NAME plain/${name} COMMAND ${name})
    set_tests_properties(plain/${name} PROPERTIES LABELS "plain;header" TIMEOUT 60 ENVIRONMENT "${IPUFLOW_TEST_ENV}")
endfunction()
