# End-to-end checks of the culora program.
add_test(NAME e2e.cli_doc_is_current
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/e2e/cli_doc.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR})
set_tests_properties(e2e.cli_doc_is_current PROPERTIES LABELS "cpu;e2e")
