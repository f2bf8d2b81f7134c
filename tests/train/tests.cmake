culora_add_gtest(test_train LABELS cpu SOURCES train/test_schedule.cpp train/test_trainer.cpp)
