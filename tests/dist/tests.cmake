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
