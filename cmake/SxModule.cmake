# sx_module(): one module = one folder = one static library, with the dependency direction checked.
#
#   sx_module(<name> SOURCES <file>... HEADERS <public header>...
#             [DEPS <module>...] [LIBS <target>...] [PUBLIC_LIBS <target>...])
#
# Makes the library sx_<name> from the folder's SOURCES. What other targets may include of it is
# only its HEADERS: they are linked into ${CMAKE_BINARY_DIR}/modules/<name>/<name>/, and that folder
# is the library's one PUBLIC include directory, so a consumer writes #include "<name>/<header>" and
# cannot reach the module's *_internal.h. The module's own sources see their folder the same way
# (a private include directory that holds only this module), so a module that does not list a
# module in DEPS cannot include that module's header either.
#
# DEPS are other modules, linked PRIVATE. Each must sit on a lower layer than this one (the table
# SX_LAYER_<module> in the top-level CMakeLists.txt): a dependency that points up or sideways stops
# the configuration. LIBS are external targets linked PRIVATE; PUBLIC_LIBS the few whose headers
# this module's public header includes.
#
# Debian installs every library header under /usr/include, where any source can reach it, so the
# external libraries that belong to one layer (h2o to server/) are checked by reading the sources:
# an #include of <h2o...> below the server layer stops the configuration.
function(sx_module name)
    cmake_parse_arguments(M "" "" "SOURCES;HEADERS;DEPS;LIBS;PUBLIC_LIBS" ${ARGN})
    if(NOT DEFINED SX_LAYER_${name})
        message(FATAL_ERROR "module ${name}: no layer in the SX_LAYER_* table of the top-level CMakeLists.txt")
    endif()
    set(_layer ${SX_LAYER_${name}})
    set(_target sx_${name})
    add_library(${_target} STATIC ${M_SOURCES})

    set(_public ${CMAKE_BINARY_DIR}/modules/${name})
    set(_private ${CMAKE_BINARY_DIR}/modules-private/${name})
    file(MAKE_DIRECTORY ${_public}/${name} ${_private})
    foreach(_h ${M_HEADERS})
        get_filename_component(_hname ${_h} NAME)
        file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR}/${_h} ${_public}/${name}/${_hname} SYMBOLIC)
    endforeach()
    file(CREATE_LINK ${CMAKE_CURRENT_SOURCE_DIR} ${_private}/${name} SYMBOLIC)
    target_include_directories(${_target} PUBLIC ${_public} PRIVATE ${_private})

    foreach(_dep ${M_DEPS})
        if(NOT DEFINED SX_LAYER_${_dep})
            message(FATAL_ERROR "module ${name}: unknown dependency ${_dep}")
        endif()
        if(NOT SX_LAYER_${_dep} LESS _layer)
            message(FATAL_ERROR "module ${name} (layer ${_layer}) may not depend on ${_dep} (layer ${SX_LAYER_${_dep}}): "
                                "dependencies point down the layers only")
        endif()
        target_link_libraries(${_target} PRIVATE sx_${_dep})
        # Headers a public header includes: a consumer that includes "<name>/..." needs them too.
        target_include_directories(${_target} INTERFACE ${CMAKE_BINARY_DIR}/modules/${_dep})
    endforeach()
    target_link_libraries(${_target} PRIVATE ${M_LIBS} PUBLIC ${M_PUBLIC_LIBS})
    # Every module may use common/ (it depends on nothing), and so may its consumers.
    if(NOT name STREQUAL "common")
        target_link_libraries(${_target} PUBLIC sx_common)
    endif()

    if(_layer LESS SX_LAYER_server)
        foreach(_src ${M_SOURCES} ${M_HEADERS})
            file(STRINGS ${CMAKE_CURRENT_SOURCE_DIR}/${_src} _bad REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]h2o")
            if(_bad)
                message(FATAL_ERROR "${name}/${_src}: includes h2o, which only server/ may use")
            endif()
        endforeach()
    endif()
endfunction()
