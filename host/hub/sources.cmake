list(APPEND CULORA_SOURCES host/hub/cmaes.c)
