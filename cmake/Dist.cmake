# Dist.cmake - what `cmake --install` puts on a system, and the files the Debian package ships:
# secretsd in sbin, secretsctl in bin, the systemd unit, the configuration with system paths
# (generated from secrets.conf.example, see below), the TPM drop-in as an example, and the man
# pages (man/, built with scdoc when WITH_MAN is on).
include(GNUInstallDirs)

# The unit's folder: systemd's own answer (Debian 12: /lib/systemd/system), else that default.
pkg_get_variable(_sx_unitdir systemd systemdsystemunitdir)
if(NOT _sx_unitdir)
    set(_sx_unitdir /lib/systemd/system)
endif()
set(SX_SYSTEMD_UNIT_DIR ${_sx_unitdir} CACHE PATH "Where the systemd unit secretsd.service is installed")

# The installed configuration: secrets.conf.example with every path moved under the folders that
# secretsd.service gives the service (StateDirectory=, RuntimeDirectory=, LogsDirectory=). Each
# replacement must match exactly one line, so the example cannot change under it unnoticed.
set(_sx_example ${CMAKE_SOURCE_DIR}/secrets.conf.example)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_sx_example})
file(READ ${_sx_example} _sx_conf)
set(_sx_header "# /etc/secretsd/secrets.conf - secretsd's configuration as the secretsd service runs it: every key
# at its default except the paths, which are the folders systemd makes for the unit (state in
# /var/lib/secretsd, the admin socket in /run/secretsd, logs in /var/log/secretsd). See
# secrets.conf(5) and secretsd(8). After a change: systemctl restart secretsd.
#
")
set(_sx_repl
    "admin_socket = var/secretsd.sock" "admin_socket = /run/secretsd/secretsd.sock"
    "path = var/data" "path = /var/lib/secretsd/data"
    "key_file = var/seal.key" "key_file = /var/lib/secretsd/seal.key"
    "recovery_key_file = var/recovery.key" "recovery_key_file = /var/lib/secretsd/recovery.key"
    "access_log = -" "access_log = /var/log/secretsd/access.log"
    "audit_log =" "audit_log = /var/log/secretsd/audit.log")
list(LENGTH _sx_repl _sx_n)
math(EXPR _sx_last "${_sx_n} - 1")
foreach(_i RANGE 0 ${_sx_last} 2)
    math(EXPR _j "${_i} + 1")
    list(GET _sx_repl ${_i} _from)
    list(GET _sx_repl ${_j} _to)
    string(REGEX MATCHALL "\n${_from}\n" _hits "${_sx_conf}")
    list(LENGTH _hits _nhits)
    if(NOT _nhits EQUAL 1)
        message(FATAL_ERROR "secrets.conf.example: expected one line \"${_from}\" to make the installed configuration")
    endif()
    string(REPLACE "\n${_from}\n" "\n${_to}\n" _sx_conf "${_sx_conf}")
endforeach()
# The example's opening comment speaks of scripts/run; the installed file gets its own.
string(FIND "${_sx_conf}" "# Syntax:" _sx_syntax)
if(_sx_syntax LESS 0)
    message(FATAL_ERROR "secrets.conf.example: no \"# Syntax:\" paragraph")
endif()
string(SUBSTRING "${_sx_conf}" ${_sx_syntax} -1 _sx_rest)
file(WRITE ${CMAKE_BINARY_DIR}/dist/secrets.conf "${_sx_header}${_sx_rest}")

install(TARGETS secretsd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(TARGETS secretsctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_SOURCE_DIR}/dist/secretsd.service DESTINATION ${SX_SYSTEMD_UNIT_DIR})
# It holds no secret ([storage] dsn refuses a password), so it is readable like any other.
install(FILES ${CMAKE_BINARY_DIR}/dist/secrets.conf DESTINATION ${CMAKE_INSTALL_SYSCONFDIR}/secretsd)
install(FILES ${CMAKE_SOURCE_DIR}/dist/tpm.conf ${CMAKE_SOURCE_DIR}/secrets.conf.example
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# Man pages: scdoc sources in man/, rendered into the build tree and installed.
find_program(SCDOC scdoc)
set(_sx_man_default OFF)
if(SCDOC)
    set(_sx_man_default ON)
endif()
option(WITH_MAN "Build the man pages (man/*.scd) with scdoc" ${_sx_man_default})
if(WITH_MAN)
    if(NOT SCDOC)
        message(FATAL_ERROR "WITH_MAN=ON but scdoc was not found")
    endif()
    set(SX_MAN_PAGES secretsd.8 secretsctl.1 secrets.conf.5)
    set(_sx_man_out)
    foreach(_page ${SX_MAN_PAGES})
        string(REGEX REPLACE ".*\\.([0-9])$" "\\1" _sec ${_page})
        set(_out ${CMAKE_BINARY_DIR}/man/${_page})
        add_custom_command(OUTPUT ${_out}
                           COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
                           COMMAND ${SCDOC} < ${CMAKE_SOURCE_DIR}/man/${_page}.scd > ${_out}
                           DEPENDS ${CMAKE_SOURCE_DIR}/man/${_page}.scd
                           COMMENT "scdoc ${_page}")
        list(APPEND _sx_man_out ${_out})
        install(FILES ${_out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${_sec})
    endforeach()
    add_custom_target(man ALL DEPENDS ${_sx_man_out})
endif()
