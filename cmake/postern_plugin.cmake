# postern_add_plugin(NAME <name> SOURCES <files...> [LIBRARIES <targets...>] [NO_INSTALL])
#
# Builds the plugin module `postern-<name>.so` from SOURCES, against the SDK, with hidden
# symbols (only the Boost.DLL entry points are exported). Used in the postern tree and by
# plugin authors after find_package(postern).
function(postern_add_plugin)
  cmake_parse_arguments(arg "NO_INSTALL" "NAME" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT arg_NAME OR NOT arg_SOURCES)
    message(FATAL_ERROR "postern_add_plugin needs NAME and SOURCES")
  endif()
  set(target postern-${arg_NAME})
  add_library(${target} MODULE ${arg_SOURCES})
  target_link_libraries(${target} PRIVATE postern::sdk ${arg_LIBRARIES})
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${target}
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(DEFINED POSTERN_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${POSTERN_PLUGIN_OUTPUT_DIR})
  endif()
  if(DEFINED POSTERN_PLUGIN_INSTALL_DIR AND NOT arg_NO_INSTALL)
    install(TARGETS ${target} LIBRARY DESTINATION ${POSTERN_PLUGIN_INSTALL_DIR})
  endif()
endfunction()
