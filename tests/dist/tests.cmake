# Communicator tests. dist_probe runs as several processes: under mpirun (MPI) and spawned by
# test_dist with torchrun-style variables (TCP). Open MPI refuses root unless told; CI runs as root.
add_executable(dist_probe dist/dist_probe.c)
target_link_libraries(dist_probe PRIVATE culora_static)

culora_add_gtest(test_dist LABELS "cpu;dist" SOURCES dist/test_dist_env.cpp dist/test_dist_tcp.cpp)
target_compile_definitions(test_dist PRIVATE CULORA_DIST_PROBE="$<TARGET_FILE:dist_probe>")
add_dependencies(test_dist dist_probe)

if(CULORA_HAVE_MPI)
  find_program(CULORA_MPIRUN NAMES mpirun mpiexec)
  if(CULORA_MPIRUN)
    set(mpi_env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1)
    foreach(np IN ITEMS 2 4)
      add_test(NAME dist.mpi.collectives.np${np}
               COMMAND ${CULORA_MPIRUN} --oversubscribe -np ${np} $<TARGET_FILE:dist_probe> ok 60)
      set_tests_properties(dist.mpi.collectives.np${np} PROPERTIES LABELS "cpu;dist" ENVIRONMENT "${mpi_env}" TIMEOUT 120
                           RESOURCE_LOCK mpirun)
    endforeach()
    # A rank killed mid-run: mpirun must end the job with a non-zero status and name the lost rank.
    add_test(NAME dist.mpi.dead_rank
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/dist/expect_failure.sh "rank 1"
                     ${CULORA_MPIRUN} --oversubscribe -np 3 $<TARGET_FILE:dist_probe> die 20)
    # One mpirun at a time: concurrent Open MPI jobs on one machine can disturb each other's
    # failure reporting (seen once under ctest -j2).
    set_tests_properties(dist.mpi.dead_rank PROPERTIES LABELS "cpu;dist" ENVIRONMENT "${mpi_env}" TIMEOUT 120
                         RESOURCE_LOCK mpirun)
  endif()
endif()

# Data-parallel training (test_dist_train): train_probe trains a tiny LLaMA with LoRA as 1, 2 or 4
# ranks, under mpirun (MPI) or started by the test with torchrun-style variables (TCP).
add_executable(train_probe dist/train_probe.c)
target_include_directories(train_probe PRIVATE ${PROJECT_SOURCE_DIR}/host)
target_compile_options(train_probe PRIVATE ${culora_c_warnings})
target_link_libraries(train_probe PRIVATE culora_static)

# test_dist_train runs as two ctest tests, one per suite (MPI, TCP), each with every case of its
# suite, so that they can carry the labels, the Open MPI variables and the mpirun lock (the TCP
# suite too: on CI's 2 cores concurrent multi-process jobs only slow each other down). The MPI
# cases skip when there is no mpirun. Both take seconds.
if(NOT CULORA_HAVE_MPI OR NOT CULORA_MPIRUN)
  set(CULORA_MPIRUN "")
endif()
add_executable(test_dist_train dist/test_dist_train.cpp)
target_link_libraries(test_dist_train PRIVATE GTest::gtest GTest::gtest_main)
target_compile_definitions(test_dist_train PRIVATE CULORA_TRAIN_PROBE="$<TARGET_FILE:train_probe>"
                           CULORA_MPIRUN="${CULORA_MPIRUN}")
add_dependencies(test_dist_train train_probe)
foreach(suite IN ITEMS mpi tcp)
  string(TOUPPER ${suite} s)
  add_test(NAME dist.train.${suite} COMMAND test_dist_train --gtest_filter=DistTrain${s}.*)
  set_tests_properties(dist.train.${suite} PROPERTIES LABELS "cpu;dist" TIMEOUT 180 RESOURCE_LOCK mpirun
                       ENVIRONMENT "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1"
                       SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
endforeach()
