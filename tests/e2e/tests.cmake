# End-to-end checks of the culora program.
add_test(NAME e2e.cli_doc_is_current
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/e2e/cli_doc.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR})
set_tests_properties(e2e.cli_doc_is_current PROPERTIES LABELS "cpu;e2e")

# Every benchmark validates its variants against a reference before it times them: run each once
# in quick mode so that validation runs in CI too (its timings are not looked at here).
if(CULORA_BENCH)
  foreach(b IN ITEMS bench_adapters bench_dist bench_hub bench_lora_linear bench_quant bench_relora bench_train)
    add_test(NAME e2e.${b}_quick COMMAND $<TARGET_FILE:${b}> --quick)
    set_tests_properties(e2e.${b}_quick PROPERTIES LABELS "cpu;e2e;bench" TIMEOUT 300 RESOURCE_LOCK mpirun)
  endforeach()
endif()
